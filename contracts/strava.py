"""Strava: your athlete profile, and every activity by day, with its detail and streams.

Needs STRAVA_CLIENT_ID and STRAVA_CLIENT_SECRET (an API application at
https://www.strava.com/settings/api), then ``apigetter authorize strava`` once (or
STRAVA_REFRESH_TOKEN). Strava rotates refresh tokens: the latest one lives in the store.

Strava's read limit is 100 requests per 15 minutes and 1,000 a day, per application.
Each activity costs two requests (detail and streams), so work is sized to stay inside
them: the standard fetch lists activities since the last success (a week of overlap, so
a detail that failed is fetched again; 14 days on the first run), and the history walk
goes back 20 activities per chunk, one chunk every 2 hours, until ``origin_date``.
"""

from datetime import timedelta

from apigetter.contract import (
    DAY,
    HOUR,
    MINUTE,
    Api,
    BeforeWalk,
    Child,
    Endpoint,
    Limit,
    OAuth2Refresh,
    PageNumberPager,
    Since,
)

PER_CHUNK = 20  # activities per history chunk: 41 requests with their children
STREAMS = (
    "time,distance,latlng,altitude,heartrate,cadence,watts,velocity_smooth,moving,grade_smooth,temp"
)

API = Api(
    name="strava",
    base_url="https://www.strava.com",
    auth=OAuth2Refresh(
        token_url="oauth/token",
        authorize_url="oauth/authorize",
        client_id="STRAVA_CLIENT_ID",
        client_secret="STRAVA_CLIENT_SECRET",
        refresh_token="STRAVA_REFRESH_TOKEN",
        client_auth="body",
        scope="read,profile:read_all,activity:read_all",
        authorize_params={"approval_prompt": "auto"},
    ),
    limits=(Limit(100, per_seconds=15 * MINUTE), Limit(1000, per_seconds=DAY)),
    endpoints=(
        Endpoint("athlete", "api/v3/athlete", every=DAY),
        Endpoint(
            "activities",
            "api/v3/athlete/activities",
            every=6 * HOUR,
            params=Since("after", fmt="epoch", first=timedelta(days=14), overlap=timedelta(days=7)),
            paginator=PageNumberPager(size=100),
            day_key="start_date",  # the UTC start; start_date_local is wall-clock marked Z
            id_key="id",
            history=BeforeWalk(
                param="before", date_field="start_date", size=PER_CHUNK, pause=2 * HOUR
            ),
            children=(
                Child("activity", "api/v3/activities/{id}", max_per_run=PER_CHUNK),
                Child(
                    "streams",
                    "api/v3/activities/{id}/streams",
                    params={"keys": STREAMS, "key_by_type": "true"},
                    max_per_run=PER_CHUNK,
                ),
            ),
        ),
    ),
)
