"""The gateway comparison (`python -m loadtests`) and the code its locustfile uses.

`loadtests/` holds nothing but the locustfile, because `locust -f loadtests` imports every module of
that folder; everything else lives here, under plain module names.
"""
