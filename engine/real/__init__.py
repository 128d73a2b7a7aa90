"""The real engine: a local kube-apiserver (cluster.py), the server-side dry run of a stack's objects
(server_check.py) and the real Pulumi CLI's up / preview / destroy cycle against it (up_local.py).

The binaries come from `make engine-tools` (engine/tools/build.sh) into .engine-tools/bin/.
"""
