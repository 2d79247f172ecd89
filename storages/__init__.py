"""Import/export cloud storage connections (tenant schema). Filled by the cloud-storages issue."""
