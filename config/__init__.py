"""Settings: embedded defaults for development, overridden by environment variables."""

from config.settings import ConfigurationError, Settings, load_settings

__all__ = ["ConfigurationError", "Settings", "load_settings"]
