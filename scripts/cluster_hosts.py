"""cluster_hosts.py: the hosts of `make bench-cluster HOSTFILE=...`.

    cluster_hosts.py check HOSTFILE          validate; print "HOSTS SLOTS"
    cluster_hosts.py facts HOSTFILE MACHINE_JSON
        gather every host's facts and add them to MACHINE_JSON ("cluster")

The hostfile is Open MPI's: one host a line, `host slots=N` (slots
optional, default 1), `#` comments and blank lines ignored.  A missing,
unreadable or empty hostfile, or a line that is not `host [slots=N]`, is
one message on stderr and exit status 2.

The facts come from each host itself: one process per host started by
`mpirun --hostfile HOSTFILE --map-by ppr:1:node` (over ssh for remote
hosts, as the benchmark's own ranks are), running Debian's python3 with a
few lines that print one JSON object: host name, CPU model, online CPUs,
memory, kernel, OS, Open MPI's version and whether the poolbench binary
and mpi_pingpong exist at this machine's paths there.  A host that does
not answer within the deadline is recorded with the error.  Open MPI's
allow-run-as-root settings are set for the child here.
"""
import json
import os
import re
import subprocess
import sys

LINE = re.compile(r"^([A-Za-z0-9_.:\[\]-]+)(?:\s+slots=([1-9][0-9]{0,5}))?"
                  r"(?:\s+max[-_]slots=[1-9][0-9]{0,5})?\s*$")

FACTS = r"""
import json, os, platform, re, socket, subprocess, sys
def read(p):
    try:
        return open(p).read()
    except OSError:
        return ""
def ver():
    try:
        out = subprocess.run(["ompi_info", "--version"], capture_output=True, text=True, timeout=20).stdout
        m = re.search(r"v(\d+\.\d+\.\d+)", out)
        return m.group(1) if m else None
    except (OSError, subprocess.SubprocessError):
        return None
m = re.search(r"model name\s*:\s*(.+)", read("/proc/cpuinfo"))
mem = re.search(r"MemTotal:\s*(\d+)", read("/proc/meminfo"))
osr = re.search(r'PRETTY_NAME="([^"]+)"', read("/etc/os-release"))
print(json.dumps({"host": socket.gethostname(), "cpu_model": " ".join(m.group(1).split()) if m else None,
    "online_cpus": os.cpu_count(), "memory_kb": int(mem.group(1)) if mem else None,
    "kernel": platform.release(), "os": osr.group(1) if osr else None, "open_mpi": ver(),
    "poolbench_present": os.access(sys.argv[1], os.X_OK),
    "mpi_pingpong_present": os.access(sys.argv[2], os.X_OK)}), flush=True)
"""


class Bad(Exception):
    pass


def parse(path):
    """[(host, slots)] of the hostfile, or Bad with the reason."""
    if not path:
        raise Bad("HOSTFILE is not set (make bench-cluster HOSTFILE=FILE, lines 'host slots=N')")
    if not os.path.exists(path):
        raise Bad("HOSTFILE=%s does not exist" % path)
    if not os.path.isfile(path):
        raise Bad("HOSTFILE=%s is not a regular file" % path)
    try:
        with open(path) as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise Bad("HOSTFILE=%s cannot be read: %s" % (path, getattr(e, "strerror", None) or e))
    hosts = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = LINE.match(line)
        if not m:
            raise Bad("HOSTFILE=%s line %d: '%s' is not 'host slots=N' (N a positive integer)"
                      % (path, n, line))
        hosts.append((m.group(1), int(m.group(2) or 1)))
    if not hosts:
        raise Bad("HOSTFILE=%s names no host (expected lines 'host slots=N')" % path)
    return hosts


def gather(path, hosts, poolbench, pingpong):
    """One facts object per host, in the hostfile's order (merged by name
    when a host answers with another name than the hostfile's)."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    argv = ["mpirun", "--hostfile", path, "--map-by", "ppr:1:node", "--oversubscribe",
            sys.executable if sys.executable.startswith("/usr/bin/") else "/usr/bin/python3",
            "-c", FACTS, poolbench, pingpong]
    try:
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL, start_new_session=True)
        out, err, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, err, rc = e.stdout or "", "no answer within 120 s", None
    except OSError as e:
        out, err, rc = "", str(e), None
    if isinstance(out, bytes):
        out = out.decode(errors="replace")
    facts = []
    for line in out.splitlines():
        try:
            facts.append(json.loads(line))
        except ValueError:
            pass
    rows = []
    for name, slots in hosts:
        f = next((x for x in facts if x.get("host") == name or x.get("host", "").split(".")[0] == name), None)
        if f is None and name in ("localhost", "127.0.0.1") and len(hosts) == 1 and facts:
            f = facts[0]
        if f is not None:
            facts.remove(f)
        rows.append(dict(f or {"error": "no answer: %s" % (err.strip().splitlines() or ["?"])[-1][:200]},
                         hostfile_name=name, slots=slots))
    for f in facts:  # answered under a name the hostfile does not use
        rows.append(dict(f, hostfile_name=None, slots=None))
    return rows, rc


def main(argv):
    if len(argv) < 3 or argv[1] not in ("check", "facts"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        hosts = parse(argv[2])
    except Bad as e:
        print("bench-cluster: %s" % e, file=sys.stderr)
        return 2
    if argv[1] == "check":
        print(len(hosts), sum(s for _, s in hosts))
        return 0
    if len(argv) != 6:
        print("usage: cluster_hosts.py facts HOSTFILE MACHINE_JSON POOLBENCH PINGPONG", file=sys.stderr)
        return 2
    rows, rc = gather(argv[2], hosts, argv[4], argv[5])
    with open(argv[3]) as f:
        doc = json.load(f)
    doc["cluster"] = {"hostfile": os.path.abspath(argv[2]), "hosts": rows,
                      "total_slots": sum(s for _, s in hosts), "mpirun_status": rc}
    tmp = argv[3] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(tmp, argv[3])
    missing = [r["hostfile_name"] for r in rows if "error" in r]
    for r in rows:
        print("bench-cluster: host %s: %s" % (r.get("hostfile_name") or r.get("host"), r.get("error") or
              "%s, %s CPUs, Open MPI %s" % (r.get("cpu_model"), r.get("online_cpus"), r.get("open_mpi"))),
              file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
