"""Who may open the page when its login is on: RAG_ALLOWED_USERS lists e-mail addresses and @domains."""

from __future__ import annotations


def allowed_list(setting: str) -> tuple[str, ...]:
    """The entries of RAG_ALLOWED_USERS, lower-cased: "a@desk.org" or "@desk.org"."""
    return tuple(e.strip().lower() for e in setting.split(",") if e.strip())


def user_allowed(email: str | None, setting: str) -> bool:
    """True when the signed-in user may use the page: every user when the list is empty, else a listed address or
    an address of a listed domain (a user without an e-mail address only when the list is empty)."""
    entries = allowed_list(setting)
    if not entries:
        return True
    if not email or "@" not in email:
        return False
    email = email.strip().lower()
    domain = "@" + email.rsplit("@", 1)[1]
    return email in entries or domain in entries


def page_owner(user: dict[str, object] | None) -> str:
    """Whose chats the page shows: "user:EMAIL" (else "user:SUB") for a signed-in user, "" without login."""
    if not user:
        return ""
    return f"user:{user.get('email') or user.get('sub') or 'unknown'}"
