"""The page table: every page file of ``pages/``, its title, icon, section and the roles that may open it.

It is the one place a page's roles are written: the navigation shows each role its pages from it,
and every page's guard (:func:`dashboard.context.open_page`) looks its own roles up in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
PAGES = (
    PageSpec("needs_attention.py", "Needs attention", ":material/priority_high:", _TEACHING, "Teaching"),
    PageSpec("student.py", "Student timeline", ":material/timeline:", _TEACHING, "Teaching"),
    PageSpec("predict.py", "Predict one student", ":material/person_search:", _TEACHING, "Teaching"),
    PageSpec("upload.py", "Upload a class", ":material/upload_file:", _TEACHING, "Teaching"),
    PageSpec("outcomes.py", "Record outcomes", ":material/grading:", _TEACHING, "Teaching"),
    PageSpec("my_students.py", "My students", ":material/groups:", _TEACHING, "Teaching"),
    PageSpec("monitoring.py", "Monitoring", ":material/monitoring:", _ADMIN, "Administration"),
    PageSpec("alerts.py", "Alerts", ":material/notifications:", _ADMIN, "Administration"),
    PageSpec("models.py", "Model versions", ":material/model_training:", _ADMIN, "Administration"),
    PageSpec("users.py", "Users", ":material/manage_accounts:", _ADMIN, "Administration"),
    PageSpec("api_keys.py", "API keys", ":material/key:", _ADMIN, "Administration"),
    PageSpec("acting.py", "Did acting help?", ":material/volunteer_activism:", _ADMIN, "Administration"),
    PageSpec("school_settings.py", "School settings", ":material/tune:", _ADMIN, "Administration"),
)


def page_spec(script: str | Path) -> PageSpec:
    """The entry of the page whose script is ``script`` (a page passes its ``__file__``)."""
    name = Path(script).name
    spec = next((spec for spec in PAGES if spec.file == name), None)
    if spec is None:
        raise LookupError(f"{name} is not in the page table (dashboard/page_table.py)")
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
