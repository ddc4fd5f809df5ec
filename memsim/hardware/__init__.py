"""Hardware descriptions: memory levels, links, compute units, presets."""
from .io import apply_overrides, hardware_to_dict, hardware_to_yaml, parse_override
from .loader import hardware_from_data, load_hardware, parse_hardware, preset_names
from .model import (CacheSpec, ChannelSpec, ComputeUnit, FabricSpec, FabricUnit, FlashSpec,
                    GpuExecution, Hardware, Link, MemoryLevel, Rate)

__all__ = ["load_hardware", "parse_hardware", "hardware_from_data", "preset_names", "Hardware",
           "MemoryLevel", "Link", "Rate", "ComputeUnit", "GpuExecution", "CacheSpec",
           "FlashSpec", "FabricSpec", "FabricUnit", "ChannelSpec", "apply_overrides",
           "hardware_to_dict", "hardware_to_yaml", "parse_override"]
