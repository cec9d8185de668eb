"""The prediction log: the writer (``writer``), its SQL insert (``insert``) and the local spool (``spool``)."""
