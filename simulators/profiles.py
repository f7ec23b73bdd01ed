"""The simulated user's profiles, by name: plain data, so the CLI can list them without importing
the simulators."""
from __future__ import annotations

# How the simulated user behaves (``crs eval --profile``). The first three are the agenda user's
# protocols (simulators.agenda); ``llm`` is the LLM user (simulators.llm_user), whose per-turn
# fallback is the agenda user in the default profile.
PROFILES: dict[str, str] = {
    "realistic": "the default, a model of people and not a measurement: a reason with about half of the "
                 "rejections, some vague ('cuter', 'something else'), 10% wrong and 10% 'don't know' answers, "
                 "patience of 4-10 replies drawn per user, words the catalog does not use",
    "critiquing": "a concrete reason with every rejection ('like the second but blue'), 10% wrong answers",
    "mcr": "the field's multi-round protocol (EAR/SCPR/UNICORN): accepts only the target, rejects a page with "
           "'none of these' and no reason, answers questions truthfully (a click on the target's option, "
           "'none of these' when it has none of them)",
    "llm": "the LLM user (needs --llm): a chat model playing the shopper; lines naming the target are redacted",
}
DEFAULT_PROFILE = "realistic"
AGENDA_PROFILES = ("realistic", "critiquing", "mcr")
