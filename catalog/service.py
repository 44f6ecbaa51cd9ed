"""The catalog's use cases in one place; each lives in the module of its own word.

- `catalog.access`: who sees and changes what (`visible_titles`, `acting_studio`, ...)
- `catalog.titles`: titles and their hierarchy
- `catalog.assets`: asset registration, presigned uploads, verified completion
- `catalog.media`: derived runtimes and heights (`refresh_title_media`)
- `catalog.rights`: rights grants and their search terms
- `catalog.talent`: talent, credits, consents
- `catalog.clearance`: the clearance check and its extension hook
"""

from __future__ import annotations

from catalog.access import (
    acting_studio,
    can_manage,
    get_managed_title,
    get_visible_title,
    visible_titles,
)
from catalog.assets import (
    complete_asset,
    issue_upload,
    register_asset,
    storage_key_for,
    title_assets,
    visible_assets,
)
from catalog.clearance import check_clearance, register_clearance_check
from catalog.media import refresh_title_media, refresh_titles_media
from catalog.rights import create_grant, delete_grant, sync_rights_terms, title_grants
from catalog.talent import (
    add_consent,
    add_credit,
    create_talent,
    get_talent,
    talent_consents,
    title_credits,
    visible_talent,
)
from catalog.titles import create_title, delete_title, set_genres, update_title

__all__ = [
    "acting_studio",
    "add_consent",
    "add_credit",
    "can_manage",
    "check_clearance",
    "complete_asset",
    "create_grant",
    "create_talent",
    "create_title",
    "delete_grant",
    "delete_title",
    "get_managed_title",
    "get_talent",
    "get_visible_title",
    "issue_upload",
    "refresh_title_media",
    "refresh_titles_media",
    "register_asset",
    "register_clearance_check",
    "set_genres",
    "storage_key_for",
    "sync_rights_terms",
    "talent_consents",
    "title_assets",
    "title_credits",
    "title_grants",
    "update_title",
    "visible_assets",
    "visible_talent",
    "visible_titles",
]
