"""The IVR domain: the menu tree as data (:mod:`ivr.menu`), one caller's walk through it
(:mod:`ivr.walk`), and its prompts as sound files (:mod:`ivr.prompts`)."""
