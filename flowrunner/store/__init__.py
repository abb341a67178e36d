"""Where results are kept: the content-addressed cache on disk (`cache`: entries, files,
task journals, claims, atomic writes), its keys (`cache_key`), the cache shared through a
store (`remote`: read-through, write-through, claims, signed entries) and the store itself,
an S3 bucket or a shared folder (`objectstore`, the only user of boto3).

May import: the leaves.
"""
