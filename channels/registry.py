"""What each platform can do, known even when its adapter is not configured.

The pipeline plans acknowledgements for messages from every platform (the demo replays
all three without credentials), so capabilities are looked up by channel name here. This is
the one statement of them: each adapter class points at its entry.
"""

from __future__ import annotations

from bot.messages import Capabilities

PLATFORM_CAPABILITIES: dict[str, Capabilities] = {
    # Mentions can be answered in the thread; a DM reaches the author privately.
    "twitter": Capabilities(
        private_reply=True, public_reply=True, publish=True, attachments=True, max_text_chars=280
    ),
    # Messenger is private; a page comment can get a public reply or one Private Reply.
    "facebook": Capabilities(
        private_reply=True, public_reply=True, publish=True, attachments=True, max_text_chars=8000
    ),
    # In The Know replies arrive by email and are answered by email only.
    "in_the_know": Capabilities(
        private_reply=True, public_reply=False, publish=True, attachments=True, max_text_chars=5000
    ),
}
UNKNOWN = Capabilities()


def capabilities_for(channel: str) -> Capabilities:
    return PLATFORM_CAPABILITIES.get(channel, UNKNOWN)
