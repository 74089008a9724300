#!/usr/bin/env python3
"""Checks the pods of Kubernetes manifests against the Pod Security Standards' "restricted"
profile (https://kubernetes.io/docs/concepts/security/pod-security-standards/, as of
Kubernetes 1.29), offline: what the admission controller of a namespace labelled
`pod-security.kubernetes.io/enforce: restricted` would refuse. Prints each violation with
its file, object and field, and exits with status 1 if there is any.

    python3 deploy/kubernetes/check-restricted.py deploy/kubernetes/*.yaml
"""

import sys

import yaml

# Kinds whose pod template is at spec.template.spec (or spec.jobTemplate for a CronJob).
TEMPLATED = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
ALLOWED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}
# Baseline: capabilities a container may add; restricted allows only NET_BIND_SERVICE.
ALLOWED_ADDED_CAPABILITIES = {"NET_BIND_SERVICE"}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
}


def pod_spec(obj):
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind in TEMPLATED:
        return (spec.get("template") or {}).get("spec")
    if kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        return (job.get("template") or {}).get("spec")
    return None


def violations(spec):
    """Yields (field, problem) for every rule of the profile the pod spec breaks."""
    pod_sc = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            yield field, "must not be true"
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            yield "securityContext.sysctls", f"`{sysctl.get('name')}` is not a safe sysctl"
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            yield f"volumes[{volume.get('name')}]", f"type {sorted(kinds)} is not allowed"
    if pod_sc.get("runAsUser") == 0:
        yield "securityContext.runAsUser", "must not be 0"
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        yield "securityContext.seccompProfile.type", f"`{pod_seccomp}` is not allowed"

    containers = [
        (group, c)
        for group in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(group) or []
    ]
    for group, container in containers:
        where = f"{group}[{container.get('name')}]"
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            yield f"{where}.securityContext.privileged", "must not be true"
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                yield f"{where}.ports", "hostPort must not be set"
        if sc.get("procMount") not in (None, "Default"):
            yield f"{where}.securityContext.procMount", "must be Default"
        if sc.get("allowPrivilegeEscalation") is not False:
            yield f"{where}.securityContext.allowPrivilegeEscalation", "must be false"
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            yield f"{where}.securityContext.runAsNonRoot", "must be true (here or for the pod)"
        if sc.get("runAsUser") == 0:
            yield f"{where}.securityContext.runAsUser", "must not be 0"
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            yield f"{where}.securityContext.seccompProfile.type", (
                "must be RuntimeDefault or Localhost (here or for the pod)"
            )
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            yield f"{where}.securityContext.capabilities.drop", "must include ALL"
        added = set(capabilities.get("add") or []) - ALLOWED_ADDED_CAPABILITIES
        if added:
            yield f"{where}.securityContext.capabilities.add", f"{sorted(added)} not allowed"


def main(paths):
    found = 0
    pods = 0
    for path in paths:
        with open(path, encoding="utf-8") as file:
            for obj in yaml.safe_load_all(file):
                spec = pod_spec(obj or {})
                if spec is None:
                    continue
                pods += 1
                name = f"{obj['kind']}/{(obj.get('metadata') or {}).get('name')}"
                for field, problem in violations(spec):
                    print(f"{path}: {name}: {field}: {problem}")
                    found += 1
    if pods == 0:
        print("no pod or pod template found", file=sys.stderr)
        return 1
    print(f"Pod Security restricted: {pods} pod templates, {found} violations")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
