"""Hacker News: your user profile, and each item you submitted (once, when it appears).

Needs HACKERNEWS_USERNAME. No credentials; the API has no published rate limit, so we
stay polite with a modest one.
"""

from typing import Any

from apigetter.contract import DAY, Api, Child, Endpoint, Limit


def submitted(user: Any) -> list[Any]:
    """The ids a user submitted; an unknown user answers null, a new one has no list."""
    return list(user.get("submitted") or []) if isinstance(user, dict) else []


API = Api(
    name="hackernews",
    base_url="https://hacker-news.firebaseio.com/v0",
    limits=(Limit(10, per_seconds=1),),
    endpoints=(
        Endpoint(
            "user",
            "user/{HACKERNEWS_USERNAME}.json",
            every=DAY,
            # Deleted items answer null: the runner skips them without failing the run.
            children=(Child("items", "item/{id}.json", ids=submitted),),
        ),
    ),
)
