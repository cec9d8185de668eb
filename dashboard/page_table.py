"""The page table: every page file of ``pages/``, its title, icon, section and the roles that may open it.

It is the one place a page's roles are written: the navigation shows each role its pages from it,
and every page's guard (:func:`dashboard.context.open_page`) looks its own roles up in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from model.i18n import N_
from model.settings import PROJECT_ROOT

PAGES_DIR = PROJECT_ROOT / "pages"


@dataclass(frozen=True)
class PageSpec:
    """A page file of ``pages/`` and who may open it."""

    file: str
    title: str
    icon: str
    roles: tuple[str, ...]
    section: str

    @property
    def path(self) -> Path:
        return PAGES_DIR / self.file


_TEACHING, _ADMIN = ("teacher", "admin"), ("admin",)
ROLE_NAMES = {"teacher": N_("teacher"), "admin": N_("admin")}  # a role as a page says it, with tr()
_TEACH, _RUN = N_("Teaching"), N_("Administration")  # sections; titles and sections are shown with tr()
PAGES = (
    PageSpec("needs_attention.py", N_("Needs attention"), ":material/priority_high:", _TEACHING, _TEACH),
    PageSpec("student.py", N_("Student timeline"), ":material/timeline:", _TEACHING, _TEACH),
    PageSpec("predict.py", N_("Predict one student"), ":material/person_search:", _TEACHING, _TEACH),
    PageSpec("upload.py", N_("Upload a class"), ":material/upload_file:", _TEACHING, _TEACH),
    PageSpec("outcomes.py", N_("Record outcomes"), ":material/grading:", _TEACHING, _TEACH),
    PageSpec("my_students.py", N_("My students"), ":material/groups:", _TEACHING, _TEACH),
    PageSpec("monitoring.py", N_("Monitoring"), ":material/monitoring:", _ADMIN, _RUN),
    PageSpec("alerts.py", N_("Alerts"), ":material/notifications:", _ADMIN, _RUN),
    PageSpec("models.py", N_("Model versions"), ":material/model_training:", _ADMIN, _RUN),
    PageSpec("users.py", N_("Users"), ":material/manage_accounts:", _ADMIN, _RUN),
    PageSpec("api_keys.py", N_("API keys"), ":material/key:", _ADMIN, _RUN),
    PageSpec("acting.py", N_("Did acting help?"), ":material/volunteer_activism:", _ADMIN, _RUN),
    PageSpec("school_settings.py", N_("School settings"), ":material/tune:", _ADMIN, _RUN),
)


def page_spec(script: str | Path) -> PageSpec:
    """The entry of the page whose script is ``script`` (a page passes its ``__file__``)."""
    name = Path(script).name
    spec = next((spec for spec in PAGES if spec.file == name), None)
    if spec is None:
        raise LookupError(f"{name} is not in the page table (dashboard/page_table.py)")  # not shown to users
    return spec


def navigation(role: str) -> dict[str, list[tuple[PageSpec, bool]]]:
    """Section -> (page, visible) for ``role``, only for page files that exist.

    Pages the role may not open are still registered, hidden, so their URL reaches the page's own
    guard and shows a refusal instead of silently landing elsewhere.
    """
    sections: dict[str, list[tuple[PageSpec, bool]]] = {}
    for spec in PAGES:
        if spec.path.is_file():
            visible = role in spec.roles
            section = spec.section if visible else PAGES[0].section
            sections.setdefault(section, []).append((spec, visible))
    return sections
