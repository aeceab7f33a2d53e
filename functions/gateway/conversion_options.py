"""kiro_core's ConversionOptions from the conversion settings, without restating a single default.

kiro_core stays pure (it reads no settings); this is the one mapping between the two. An option takes the setting of
the same name, or of the same name with a `kiro_` prefix (the original gateway's variable names); options no setting
names (placeholders, the profile ARN) keep kiro_core's defaults.
"""

from __future__ import annotations

import dataclasses

from gateway.settings import Settings
from kiro_core.convert.options import ConversionOptions


def setting_name_of(option: str, settings: Settings) -> tuple[str, str] | None:
    """(section, field) of the setting behind a ConversionOptions field, or None when no setting names it."""
    for section in ("conversion", "conversations"):
        names = {spec.name for spec in dataclasses.fields(getattr(settings, section))}
        for name in (option, f"kiro_{option}"):
            if name in names:
                return section, name
    return None


def conversion_options(settings: Settings) -> ConversionOptions:
    values = {}
    for option in dataclasses.fields(ConversionOptions):
        found = setting_name_of(option.name, settings)
        if found is not None:
            values[option.name] = getattr(getattr(settings, found[0]), found[1])
    return ConversionOptions(**values)
