"""Projects, tasks, annotations, imports and exports (tenant schema). Filled by the labeling-core issue."""
