"""Storage devices and links as simpy resources: flash/SSD request model (latency to first
byte, per-request overhead, channels, queue depth, host threads), PCIe/NVMe links with latency
and per-transfer overhead, and their fits to measured data."""
from .device import ReadRun, StorageDevice, StorageResources, simulate_reads
from .link import LinkModel, LinkResources

__all__ = ["StorageDevice", "StorageResources", "simulate_reads", "ReadRun", "LinkModel",
           "LinkResources"]
