"""Import/export cloud storage connections (tenant schema). Filled by the cloud-storages issue.

django-storages (the S3 media backend) is also the package `storages`, which this app shadows.
Its modules (`storages.backends.s3`, `storages.utils`, `storages.base`, `storages.compress`) are
found beside ours through the extended package path: never add modules of those names here.
"""

import pkgutil

__path__ = pkgutil.extend_path(__path__, __name__)
