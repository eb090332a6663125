#!/usr/bin/env python3
"""Turns a rendered kustomize overlay (`kubectl kustomize deploy/k8s/overlays/
production`) into what podman 4.3's `podman kube play` can run, changing as
little as possible, each change for a reason podman gives (docs/deploy.md,
"The production overlay under podman"):

 1. Kinds. ConfigMaps and Deployments are played as rendered. StatefulSets
    are not a kind podman plays: each of their pods is written as a Pod from
    the set's template, named <set>-<i> with that hostname (what the
    StatefulSet controller does), its volumeClaimTemplates becoming a podman
    volume per pod (persistentVolumeClaim). Services are not played either:
    the headless Services' per-pod names (<pod>.<service>, with .<namespace>
    and .<namespace>.svc.cluster.local) are given to every pod as hostAliases
    to the pod's static IP (what cluster DNS does); the gateways' LoadBalancer
    and API Services are replaced by host ports (below). Namespace,
    PodDisruptionBudget, HorizontalPodAutoscaler and NetworkPolicy have no
    podman equivalent and are left out (listed in the manifest).
 2. Replicas. A Deployment whose pods need their own values (an env var from
    status.podIP, or published ports) is split into one Deployment per
    replica, <name>-<i> with replicas 1; the others keep their replicas.
 3. Env. podman 4.3 supports fieldRef only for metadata.name, labels and
    annotations, and passes $(VAR) verbatim: status.podIP becomes the pod's
    static IP, metadata.namespace the overlay's namespace, and $(VAR) is
    expanded from the variables before it (Kubernetes' dependent variables;
    one from a secretKeyRef takes the Secret's value, so play.yaml is 0600).
 4. envFrom. podman 4.3 applies envFrom after env, so a ConfigMap's key
    wins over the container's own env entry of the same name (the reverse
    of Kubernetes): envFrom becomes one configMapKeyRef env entry per key
    the container's env does not set, ahead of its env.
 5. Secrets. podman reads Secrets from its own secret store, in two formats:
    secretKeyRef wants a JSON object of base64 values, a secret volume a
    Secret's YAML whose data is written to the files as it is (not base64
    decoded). Each Secret the overlay references is made from DIR/<name>/
    (one file per key) in the format its use needs; a Secret used both ways
    is an error. Secret volumes get `optional: false` (podman 4.3.1
    dereferences the field unset).
 6. Names. Every object gets the prefix --prefix (podman's secrets and the
    volumes it makes for ConfigMaps and Secrets are global on the machine).
    Hostnames and the Services' DNS names keep the overlay's names.
 7. Images. --image NAME=REF replaces an image by name (no registry here:
    openvtn=localhost/openvtn:latest, redis=localhost/openvtn-redis:latest).
 8. Ports. podman 4.3 publishes every containerPort on the host's
    0.0.0.0 (at its own number when hostPort is unset), so the ports are
    removed except those --publish names (per Deployment), which get a host
    port on 127.0.0.1 counting up from --host-port. Pods reach each other
    on the network's addresses whatever the list says, as in Kubernetes.
 9. Probes. podman 4.3 ignores readiness probes and turns a liveness probe
    into a healthcheck run by a systemd timer, with curl in the container
    for httpGet: this image has no curl and CI machines no systemd, so the
    probes are removed (the test reads /readyz itself, as a load balancer).
Lifecycle hooks (preStop), resources and security contexts are passed as
they are; what podman does with them is in docs/deploy.md.

Writes OUT/play.yaml, OUT/secrets/<name>.{json,yaml} and OUT/manifest.json
(pods, their containers, IPs and host ports, the podman secrets and volumes
to remove, the objects left out and why). The IPs for --ip, in play order,
are manifest["ips"].

  from-overlay.py --prefix kube-ci --ip-base 10.89.3.10 --secrets DIR \\
      --image openvtn=localhost/openvtn:latest \\
      --publish openvtn-gateway=oadr,api,ops --publish openvtn-scheduler=ops \\
      --host-port 20000 --out OUT < rendered.yaml
"""

import argparse
import base64
import copy
import ipaddress
import json
import os
import re
import sys

import yaml

PLAYED = {"ConfigMap", "Deployment"}
LEFT_OUT = {
    "Namespace": "podman has no namespaces: the pods run in one network",
    "Service": "not played: headless Services' pod names are hostAliases, "
    "the gateways' LoadBalancer/API Services are host ports",
    "PodDisruptionBudget": "no evictions under podman",
    "HorizontalPodAutoscaler": "no autoscaler under podman: the Deployment's replicas",
    "NetworkPolicy": "podman does not enforce NetworkPolicies",
}


def fail(msg):
    sys.exit("from-overlay: " + msg)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prefix", required=True, help="prefix of every podman name (pods, secrets, volumes)")
    ap.add_argument("--ip-base", required=True, help="first static IP (in the podman network's subnet)")
    ap.add_argument("--secrets", required=True, metavar="DIR", help="DIR/<secret name>/<key> files")
    ap.add_argument("--image", action="append", default=[], metavar="NAME=REF")
    ap.add_argument("--publish", action="append", default=[], metavar="DEPLOYMENT=PORT,...",
                    help="a Deployment's container port names to publish on 127.0.0.1")
    ap.add_argument("--host-port", type=int, default=20000, help="first host port (127.0.0.1)")
    ap.add_argument("--out", required=True)
    return ap.parse_args()


class Converter:
    def __init__(self, a, objects):
        self.a = a
        self.objects = objects
        self.images = dict(i.split("=", 1) for i in a.image)
        self.publish = {}
        for p in a.publish:
            deployment, _, names = p.partition("=")
            self.publish[deployment] = {n for n in names.split(",") if n}
        self.next_ip = ipaddress.ip_address(a.ip_base)
        self.next_port = a.host_port
        self.namespace = None
        self.secret_use = {}  # secret name -> "env" or "volume"
        self.manifest = {"pods": [], "ips": [], "secrets": [], "volumes": [], "left_out": []}
        self.hosts = {}  # DNS name -> IP (headless Services' pod names)

    def name(self, n):
        return "%s-%s" % (self.a.prefix, n)

    def take_ip(self):
        ip = str(self.next_ip)
        self.next_ip += 1
        self.manifest["ips"].append(ip)
        return ip

    def run(self):
        out = []
        for o in self.objects:
            ns = o.get("metadata", {}).get("namespace")
            if ns:
                self.namespace = ns
        self.namespace = self.namespace or "default"  # Kubernetes' own default
        kinds = {}
        for o in self.objects:
            kinds.setdefault(o["kind"], []).append(o)
        self.config_maps = {o["metadata"]["name"]: o for o in kinds.get("ConfigMap", [])}
        for kind, objs in kinds.items():
            if kind not in PLAYED and kind != "StatefulSet":
                why = LEFT_OUT.get(kind)
                if why is None:
                    fail("kind %s: no rule for it (add one, saying why)" % kind)
                for o in objs:
                    self.manifest["left_out"].append({"kind": kind, "name": o["metadata"]["name"], "why": why})
        services = {o["metadata"]["name"]: o for o in kinds.get("Service", [])}

        # StatefulSet pods first: their IPs are the hostAliases every pod gets.
        static, spread = [], []
        for s in kinds.get("StatefulSet", []):
            svc = s["spec"].get("serviceName")
            if svc not in services or services[svc]["spec"].get("clusterIP") != "None":
                fail("StatefulSet %s: its serviceName is not a headless Service" % s["metadata"]["name"])
            for i in range(s["spec"].get("replicas", 1)):
                static.append(("StatefulSet", s, i, self.take_ip()))
                pod = "%s-%d" % (s["metadata"]["name"], i)
                for suffix in ("", "." + self.namespace, "." + self.namespace + ".svc.cluster.local"):
                    self.hosts["%s.%s%s" % (pod, svc, suffix)] = static[-1][3]
        for d in kinds.get("Deployment", []):
            if self.needs_own_pods(d["spec"]["template"], self.publish.get(d["metadata"]["name"], ())):
                for i in range(d["spec"].get("replicas", 1)):
                    static.append(("Deployment", d, i, self.take_ip()))
            else:
                spread.append(("Deployment", d, None, None))

        for c in kinds.get("ConfigMap", []):
            c = copy.deepcopy(c)
            self.rename_meta(c)
            out.append(c)
            self.manifest["volumes"].append(c["metadata"]["name"])  # podman makes one when mounted
        for kind, obj, i, ip in static + spread:
            out.append(self.workload(kind, obj, i, ip))
        self.write_secrets()
        return out

    def needs_own_pods(self, template, publish):
        for c in template["spec"]["containers"]:
            for e in c.get("env", []):
                if e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP":
                    return True
            if any(p.get("name") in publish for p in c.get("ports", [])):
                return True
        return False

    def rename_meta(self, o):
        meta = o["metadata"]
        meta["name"] = self.name(meta["name"])
        meta.pop("namespace", None)

    def workload(self, kind, obj, index, ip):
        base = obj["metadata"]["name"]
        template = copy.deepcopy(obj["spec"]["template"])
        spec = template["spec"]
        labels = dict(template.get("metadata", {}).get("labels", {}))
        if kind == "StatefulSet":
            pod_name = self.name("%s-%d" % (base, index))
            spec["hostname"] = "%s-%d" % (base, index)
            for claim in obj["spec"].get("volumeClaimTemplates", []):
                volume = self.name("%s-%s-%d" % (claim["metadata"]["name"], base, index))
                spec.setdefault("volumes", []).append(
                    {"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": volume}})
                self.manifest["volumes"].append(volume)
            played = {"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": pod_name, "labels": labels,
                                   "annotations": template.get("metadata", {}).get("annotations", {})},
                      "spec": spec}
            podman_pod = pod_name
        else:
            played = copy.deepcopy(obj)
            played["metadata"]["name"] = self.name(base if index is None else "%s-%d" % (base, index))
            played["metadata"].pop("namespace", None)
            if index is not None:
                played["spec"]["replicas"] = 1
            played["spec"]["template"] = template
            podman_pod = played["metadata"]["name"] + "-pod-0"
        replicas = 1 if index is not None else obj["spec"].get("replicas", 1)
        if self.hosts:
            by_ip = {}
            for host, addr in sorted(self.hosts.items()):
                by_ip.setdefault(addr, []).append(host)
            spec["hostAliases"] = spec.get("hostAliases", []) + [
                {"ip": addr, "hostnames": names} for addr, names in by_ip.items()]
        for v in spec.get("volumes", []):
            if "secret" in v:
                v["secret"]["secretName"] = self.use_secret(v["secret"]["secretName"], "volume")
                v["secret"].setdefault("optional", False)
                if v["secret"]["secretName"] not in self.manifest["volumes"]:
                    self.manifest["volumes"].append(v["secret"]["secretName"])
            if "configMap" in v:
                v["configMap"]["name"] = self.name(v["configMap"]["name"])
        for r in range(replicas):
            pod = podman_pod if index is not None or kind == "StatefulSet" else "%s-pod-%d" % (
                played["metadata"]["name"], r)
            entry = {"pod": pod, "kind": kind, "of": base, "index": index if index is not None else r,
                     "ip": ip, "containers": {}, "ports": {}}
            self.manifest["pods"].append(entry)
        for c in spec["containers"]:
            # The pod's name is known only when this Deployment or Pod makes one pod.
            published = self.container(c, ip, podman_pod if replicas == 1 else None, self.publish.get(base, ()))
            for e in self.manifest["pods"][-replicas:]:
                e["containers"][c["name"]] = "%s-%s" % (e["pod"], c["name"])
                e["ports"].update(published)
        return played

    def container(self, c, ip, pod, publish):
        image, _, _ = c["image"].partition(":")
        if image in self.images:
            c["image"] = self.images[image]
        values = {}
        for e in c.get("env", []):
            ref = e.get("valueFrom", {})
            path = ref.get("fieldRef", {}).get("fieldPath")
            if path == "status.podIP":
                e.pop("valueFrom")
                e["value"] = ip
            elif path == "metadata.namespace":
                e.pop("valueFrom")
                e["value"] = self.namespace
            elif path == "metadata.name" and pod:
                values[e["name"]] = pod  # what podman sets
            if "secretKeyRef" in ref:
                key = ref["secretKeyRef"]
                values[e["name"]] = self.secret_value(key["name"], key["key"])  # for $(...)
                key["name"] = self.use_secret(key["name"], "env")
            if "value" in e:
                e["value"] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                                    lambda m: values.get(m.group(1), m.group(0)), e["value"])
                values[e["name"]] = e["value"]
        # envFrom: one configMapKeyRef per key the container's env does not
        # set, ahead of env (podman 4.3 lets envFrom win over env; in
        # Kubernetes env wins).
        own = {e["name"] for e in c.get("env", [])}
        from_maps = []
        for src in c.pop("envFrom", []):
            if "configMapRef" not in src or src.get("prefix"):
                fail("envFrom other than a configMapRef without prefix: no rule for it")
            name = src["configMapRef"]["name"]
            for key in sorted(self.config_maps[name].get("data", {})):
                if key not in own:
                    from_maps.append({"name": key, "valueFrom": {"configMapKeyRef": {"name": self.name(name),
                                                                                     "key": key}}})
        if from_maps:
            c["env"] = from_maps + c.get("env", [])
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            c.pop(probe, None)
        published = {}
        for p in c.get("ports", []):
            if p.get("name") in publish:
                p["hostPort"] = self.next_port
                p["hostIP"] = "127.0.0.1"
                published[p["name"]] = self.next_port
                self.next_port += 1
        c["ports"] = [p for p in c.get("ports", []) if "hostPort" in p]
        if not c["ports"]:
            del c["ports"]
        return published

    def secret_value(self, name, key):
        try:
            with open(os.path.join(self.a.secrets, name, key)) as f:
                return f.read()
        except OSError as e:
            fail("secret %s key %s: %s" % (name, key, e))

    def use_secret(self, name, how):
        if self.secret_use.setdefault(name, how) != how:
            fail("secret %s is used as env and as a volume: podman 4.3 needs one format for each" % name)
        return self.name(name)

    def write_secrets(self):
        os.makedirs(os.path.join(self.a.out, "secrets"), exist_ok=True)
        for name, how in sorted(self.secret_use.items()):
            src = os.path.join(self.a.secrets, name)
            if not os.path.isdir(src):
                fail("secret %s: no folder %s with its keys" % (name, src))
            data = {}
            for key in sorted(os.listdir(src)):
                with open(os.path.join(src, key), "rb") as f:
                    data[key] = f.read()
            if how == "env":
                path = os.path.join(self.a.out, "secrets", name + ".json")
                text = json.dumps({k: base64.b64encode(v).decode() for k, v in data.items()})
            else:
                path = os.path.join(self.a.out, "secrets", name + ".yaml")
                text = yaml.safe_dump({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": self.name(name)},
                                       "data": {k: v.decode() for k, v in data.items()}})
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            self.manifest["secrets"].append({"name": self.name(name), "file": path})


def main():
    a = parse_args()
    objects = [o for o in yaml.safe_load_all(sys.stdin) if o]
    conv = Converter(a, objects)
    played = conv.run()
    os.makedirs(a.out, exist_ok=True)
    # It may hold a secret's value (a $(VAR) made from one): the owner's only.
    fd = os.open(os.path.join(a.out, "play.yaml"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# Made by deploy/pod/from-overlay.py from a rendered overlay: do not edit.\n")
        yaml.safe_dump_all(played, f, sort_keys=False)
    conv.manifest["namespace"] = conv.namespace
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(conv.manifest, f, indent=1)


if __name__ == "__main__":
    main()
