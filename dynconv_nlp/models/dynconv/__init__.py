"""DynConv for transformers; importing it registers every class with the Auto classes.

The classes, and the Auto class of each, are listed once: ``modeling_dynconv.AUTO_CLASSES``.
"""

from . import modeling_dynconv
from .modeling_dynconv import *  # noqa: F403  the classes of AUTO_CLASSES

modeling_dynconv.register_auto_classes()

__all__ = modeling_dynconv.__all__
