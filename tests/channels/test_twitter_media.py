"""Posting with photos and videos on X: the v2 chunked upload against recorded-shape payloads.

initialize -> append (one call per chunk) -> finalize -> STATUS polls while a video is
processed -> POST /2/tweets with media.media_ids; fixtures in tests/fixtures/twitter.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from PIL import Image

from bot.errors import PermanentError, RateLimited, TransientError
from bot.messages import OutboundPost
from channels import twitter as twitter_module
from channels.twitter import CHUNK_BYTES, TwitterChannel
from tests.channels.test_twitter import API, fixture, settings

UPLOAD = f"{API}/media/upload"
PHOTO_ID = fixture("media_upload_initialize_image.json")["data"]["id"]
VIDEO_ID = fixture("media_upload_initialize.json")["data"]["id"]
VIDEO_BYTES = fixture("media_upload_finalize_video.json")["data"]["size"]  # 4,718,342: 2 chunks


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def channel(sleeps: Sleeps) -> TwitterChannel:
    return TwitterChannel(settings(), sleep=sleeps)


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (1200, 675), (14, 60, 120)).save(buffer, format="JPEG")
    path = tmp_path / "bike-marking.jpg"
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """An MP4 as X's size limits see it: an ftyp box, then bulk."""
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    path = tmp_path / "lock-it.mp4"
    path.write_bytes(head + bytes(VIDEO_BYTES - len(head)))
    return path


def _post(*paths: Path, text: str = "Bike marking at the SU this Wednesday") -> OutboundPost:
    return OutboundPost(channel="twitter", text=text, media_paths=tuple(str(p) for p in paths))


def _multipart_field(body: str | bytes | None, name: str) -> bytes:
    assert isinstance(body, bytes), "an append is multipart/form-data"
    marker = f'name="{name}"'.encode()
    start = body.index(marker)
    value_start = body.index(b"\r\n\r\n", start) + 4
    return body[value_start : body.index(b"\r\n--", value_start)]


def _tweet(rsps: responses.RequestsMock) -> dict[str, Any]:
    tweets = [c for c in rsps.calls if c.request.url == f"{API}/tweets"]
    assert len(tweets) == 1
    return dict(json.loads(tweets[0].request.body or b"{}"))


def test_photo_is_uploaded_and_attached(channel: TwitterChannel, photo: Path) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            f"{UPLOAD}/initialize",
            json=fixture("media_upload_initialize_image.json"),
        )
        rsps.add(
            responses.POST,
            f"{UPLOAD}/{PHOTO_ID}/append",
            json=fixture("media_upload_append.json"),
        )
        rsps.add(
            responses.POST,
            f"{UPLOAD}/{PHOTO_ID}/finalize",
            json=fixture("media_upload_finalize_image.json"),
        )
        rsps.add(
            responses.POST,
            f"{API}/tweets",
            json=fixture("tweet_create_with_media_response.json"),
            status=201,
        )
        result = channel.publish(_post(photo))
        init, append, _, _ = rsps.calls
        tweet = _tweet(rsps)

    assert result.external_id == fixture("tweet_create_with_media_response.json")["data"]["id"]
    assert json.loads(init.request.body or b"{}") == {
        "media_type": "image/jpeg",
        "total_bytes": photo.stat().st_size,
        "media_category": "tweet_image",
    }
    assert _multipart_field(append.request.body, "segment_index") == b"0"
    assert _multipart_field(append.request.body, "media") == photo.read_bytes()
    for call in rsps.calls:  # every call signed with the account's OAuth 1.0a credentials
        authorization = str(call.request.headers["Authorization"])
        assert authorization.startswith("OAuth ") and 'oauth_consumer_key="ck"' in authorization
        assert 'oauth_token="at"' in authorization
    assert tweet == {
        "text": "Bike marking at the SU this Wednesday",
        "media": {"media_ids": [PHOTO_ID]},
    }


def test_video_is_sent_in_chunks_and_posted_once_processed(
    channel: TwitterChannel, video: Path, sleeps: Sleeps
) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST, f"{UPLOAD}/initialize", json=fixture("media_upload_initialize.json")
        )
        rsps.add(
            responses.POST, f"{UPLOAD}/{VIDEO_ID}/append", json=fixture("media_upload_append.json")
        )
        rsps.add(
            responses.POST,
            f"{UPLOAD}/{VIDEO_ID}/finalize",
            json=fixture("media_upload_finalize_video.json"),  # pending, check after 1 s
        )
        status_url = f"{UPLOAD}?command=STATUS&media_id={VIDEO_ID}"
        rsps.add(
            responses.GET,
            UPLOAD,
            json=fixture("media_upload_status_in_progress.json"),  # check after 3 s
        )
        rsps.add(responses.GET, UPLOAD, json=fixture("media_upload_status_succeeded.json"))
        rsps.add(
            responses.POST,
            f"{API}/tweets",
            json=fixture("tweet_create_with_media_response.json"),
            status=201,
        )
        channel.publish(_post(video, text="Lock it or lose it: 90 seconds on bike locks"))
        appends = [c for c in rsps.calls if str(c.request.url).endswith("/append")]
        statuses = [c for c in rsps.calls if c.request.method == "GET"]
        tweet = _tweet(rsps)
        last_call = rsps.calls[-1].request.url
        init = json.loads(rsps.calls[0].request.body or b"{}")

    chunks = [_multipart_field(c.request.body, "media") for c in appends]
    assert [_multipart_field(c.request.body, "segment_index") for c in appends] == [b"0", b"1"]
    assert [len(c) for c in chunks] == [CHUNK_BYTES, VIDEO_BYTES - CHUNK_BYTES]
    assert b"".join(chunks) == video.read_bytes()
    assert init == {
        "media_type": "video/mp4",
        "total_bytes": VIDEO_BYTES,
        "media_category": "tweet_video",
    }
    assert [str(c.request.url) for c in statuses] == [status_url, status_url]
    assert sleeps.waits == [1.0, 3.0]  # as X asked: check_after_secs of finalize, then status
    assert tweet["media"] == {"media_ids": [VIDEO_ID]}
    assert last_call == f"{API}/tweets"  # posted only after processing succeeded


def test_failed_processing_is_permanent_and_nothing_is_posted(
    channel: TwitterChannel, video: Path
) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(
            responses.POST, f"{UPLOAD}/initialize", json=fixture("media_upload_initialize.json")
        )
        rsps.add(
            responses.POST, f"{UPLOAD}/{VIDEO_ID}/append", json=fixture("media_upload_append.json")
        )
        rsps.add(
            responses.POST,
            f"{UPLOAD}/{VIDEO_ID}/finalize",
            json=fixture("media_upload_finalize_video.json"),
        )
        rsps.add(responses.GET, UPLOAD, json=fixture("media_upload_status_failed.json"))
        tweets = rsps.add(responses.POST, f"{API}/tweets", status=201, json={})
        with pytest.raises(PermanentError, match=r"InvalidMedia: Unsupported video format"):
            channel.publish(_post(video))
    assert tweets.call_count == 0


def test_rate_limit_on_append_reschedules_without_posting(
    channel: TwitterChannel, video: Path
) -> None:
    headers = fixture("error_429_headers.json")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(
            responses.POST, f"{UPLOAD}/initialize", json=fixture("media_upload_initialize.json")
        )
        rsps.add(
            responses.POST,
            f"{UPLOAD}/{VIDEO_ID}/append",
            json=fixture("error_429.json"),
            status=429,
            headers={k: v for k, v in headers.items() if k.startswith("x-")},
        )
        later = [
            rsps.add(responses.POST, f"{UPLOAD}/{VIDEO_ID}/finalize", json={}),
            rsps.add(responses.POST, f"{API}/tweets", status=201, json={}),
        ]
        with pytest.raises(RateLimited) as caught:
            channel.publish(_post(video))
        appends = [c for c in rsps.calls if str(c.request.url).endswith("/append")]
    assert caught.value.retry_at == datetime(2026, 11, 21, 12, 15, tzinfo=UTC)
    assert len(appends) == 1  # no further chunk once X said wait
    assert [r.call_count for r in later] == [0, 0]


def test_processing_that_does_not_finish_is_retried_later(
    channel: TwitterChannel, video: Path, sleeps: Sleeps
) -> None:
    slow = fixture("media_upload_status_in_progress.json")
    slow["data"]["processing_info"]["check_after_secs"] = 60
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(
            responses.POST, f"{UPLOAD}/initialize", json=fixture("media_upload_initialize.json")
        )
        rsps.add(
            responses.POST, f"{UPLOAD}/{VIDEO_ID}/append", json=fixture("media_upload_append.json")
        )
        rsps.add(responses.POST, f"{UPLOAD}/{VIDEO_ID}/finalize", json=slow)
        rsps.add(responses.GET, UPLOAD, json=slow)
        with pytest.raises(TransientError, match="still processing"):
            channel.publish(_post(video))
    assert sum(sleeps.waits) <= twitter_module.MAX_PROCESSING_SECONDS


def test_unusable_media_is_refused_before_any_call(
    channel: TwitterChannel, photo: Path, tmp_path: Path
) -> None:
    renamed = tmp_path / "poster.jpg"
    renamed.write_bytes(b"%PDF-1.7\n" + bytes(100))
    with responses.RequestsMock() as rsps:  # any call at all would fail the test
        with pytest.raises(PermanentError, match="PDF document"):
            channel.publish(_post(renamed))
        with pytest.raises(PermanentError, match="up to 4 photos"):
            channel.publish(_post(photo, photo, photo, photo, photo))
        with pytest.raises(PermanentError, match="could not be read"):
            channel.publish(_post(tmp_path / "missing.png"))
        with pytest.raises(PermanentError, match="weighted"):
            channel.publish(_post(photo, text="\u5b89" * 141))
        assert len(rsps.calls) == 0
