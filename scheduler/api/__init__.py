"""The REST API's job engine half (/api/v1/jobs/, /runs/): views, serializers, token authentication,
permissions and throttling. The syncs' half lives in ``alloysync.api``; ``config.api_urls`` joins them.
"""
