#!/usr/bin/env python3
"""Build crsc's .deb (dpkg-deb) and .rpm (rpmbuild) from nfpm.yaml, for machines without nfpm.

    CRSC_VERSION=0.1.0 packaging/build-packages.py [--config nfpm.yaml] [--out obj/packages] [--only deb|rpm]

nfpm.yaml stays the one description of the packages: this reads its name, version, arch,
maintainer, description, homepage, license, section, priority, depends (and overrides.rpm.depends),
contents (files, directories, `config|noreplace` files, file_info mode/owner/group) and scripts
(postinstall, preremove, postremove, preinstall), the way nfpm interprets them, and writes
    <out>/<name>_<version>_<arch>.deb     and     <out>/<name>-<version>-1.<rpm arch>.rpm
Paths in the file are relative to its directory. Python's standard library only; the YAML reader
knows the subset nfpm.yaml uses (mappings, lists, `|` blocks, plain and quoted scalars, comments)
and refuses anything else with the line it could not read.
"""
import argparse
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

RPM_ARCH = {"amd64": "x86_64", "arm64": "aarch64", "386": "i386", "all": "noarch"}


class YamlError(Exception):
    pass


def _scalar(text, lineno):
    text = text.strip()
    if text.startswith('"'):
        if not text.endswith('"') or len(text) < 2:
            raise YamlError(f"line {lineno}: unterminated double-quoted string")
        return bytes(text[1:-1], "utf-8").decode("unicode_escape")
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise YamlError(f"line {lineno}: unterminated single-quoted string")
        return text[1:-1].replace("''", "'")
    if text[:1] in "[{&*!%@`":
        raise YamlError(f"line {lineno}: flow collections, anchors and tags are not supported: {text}")
    return text


def _strip_comment(line):
    # a comment starts at '#' at the line's start or after a space, outside quotes
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def parse_yaml(text):
    """The subset of YAML nfpm.yaml is written in, as dicts, lists and strings."""
    raw = text.splitlines()
    lines = []  # (indent, content, lineno, raw line)
    for n, line in enumerate(raw, 1):
        if "\t" in line[: len(line) - len(line.lstrip())]:
            raise YamlError(f"line {n}: tabs in indentation")
        lines.append((len(line) - len(line.lstrip(" ")), _strip_comment(line), n, line))
    pos = 0

    def skip_blank():
        nonlocal pos
        while pos < len(lines) and lines[pos][1].strip() == "":
            pos += 1

    def block_scalar(parent_indent):
        nonlocal pos
        body, indent = [], None
        while pos < len(lines):
            ind, _, _, rawline = lines[pos]
            if rawline.strip() == "":
                body.append("")
                pos += 1
                continue
            if ind <= parent_indent:
                break
            if indent is None:
                indent = ind
            if ind < indent:
                break
            body.append(rawline[indent:])
            pos += 1
        while body and body[-1] == "":
            body.pop()
        return "\n".join(body) + "\n"

    def value_after_key(rest, indent, lineno):
        nonlocal pos
        if rest == "|":
            return block_scalar(indent)
        if rest.startswith(("|", ">")):
            raise YamlError(f"line {lineno}: only plain `|` block scalars are supported")
        if rest != "":
            return _scalar(rest, lineno)
        skip_blank()
        if pos < len(lines):
            ind, content, _, _ = lines[pos]
            if ind > indent or (ind == indent and content.lstrip().startswith("- ")):
                return node(ind)
        return None

    def mapping(indent, first=None):
        nonlocal pos
        result = {}
        pending = first
        while True:
            if pending is None:
                skip_blank()
                if pos >= len(lines):
                    break
                ind, content, lineno, _ = lines[pos]
                if ind != indent:
                    if ind > indent:
                        raise YamlError(f"line {lineno}: unexpected indentation")
                    break
                if content.lstrip().startswith("- "):
                    break
                pos += 1
            else:
                content, lineno = pending
                pending = None
            m = re.match(r"^\s*([A-Za-z0-9_.\-/]+):(?:\s+(.*)|)$", content)
            if not m:
                raise YamlError(f"line {lineno}: expected `key: value`, got: {content.strip()}")
            key, rest = m.group(1), (m.group(2) or "").strip()
            if key in result:
                raise YamlError(f"line {lineno}: duplicate key {key}")
            result[key] = value_after_key(rest, indent, lineno)
        return result

    def sequence(indent):
        nonlocal pos
        result = []
        while True:
            skip_blank()
            if pos >= len(lines):
                break
            ind, content, lineno, _ = lines[pos]
            if ind != indent or not content.lstrip().startswith("- "):
                if ind > indent:
                    raise YamlError(f"line {lineno}: unexpected indentation")
                break
            pos += 1
            item = content.lstrip()[2:]
            item_indent = indent + 2 + (len(item) - len(item.lstrip(" ")))
            item = item.strip()
            if re.match(r"^[A-Za-z0-9_.\-/]+:(\s|$)", item):
                result.append(mapping(item_indent, (" " * item_indent + item, lineno)))
            else:
                result.append(_scalar(item, lineno))
        return result

    def node(indent):
        skip_blank()
        if lines[pos][1].lstrip().startswith("- "):
            return sequence(indent)
        return mapping(indent)

    skip_blank()
    if pos >= len(lines):
        return {}
    doc = node(lines[pos][0])
    skip_blank()
    if pos < len(lines):
        raise YamlError(f"line {lines[pos][2]}: could not read: {lines[pos][3].strip()}")
    return doc


def expand_env(value, where):
    def sub(m):
        name = m.group(1) or m.group(2)
        if name not in os.environ or os.environ[name] == "":
            raise SystemExit(f"build-packages: {where} uses ${{{name}}}, which is not set")
        return os.environ[name]
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", sub, value)


class Entry:
    """One path in the package: a file (with its source) or a directory."""

    def __init__(self, dst, src, kind, mode, owner, group):
        self.dst, self.src, self.kind, self.mode, self.owner, self.group = dst, src, kind, mode, owner, group

    @property
    def is_dir(self):
        return self.kind == "dir"

    @property
    def is_config(self):
        return self.kind in ("config", "config|noreplace")


def load(config_path):
    base = os.path.dirname(os.path.abspath(config_path))
    with open(config_path, encoding="utf-8") as f:
        try:
            spec = parse_yaml(f.read())
        except YamlError as e:
            raise SystemExit(f"build-packages: {config_path}: {e}")
    for key in ("name", "version", "arch", "maintainer", "description"):
        if not spec.get(key):
            raise SystemExit(f"build-packages: {config_path}: `{key}` is required")
    spec["version"] = expand_env(spec["version"], "version")
    if not re.match(r"^[0-9][A-Za-z0-9.+~]*$", spec["version"]):
        raise SystemExit(f"build-packages: version '{spec['version']}' is not a valid package version")

    entries = []
    for i, c in enumerate(spec.get("contents") or []):
        kind = c.get("type", "file")
        if kind not in ("file", "dir", "config", "config|noreplace"):
            raise SystemExit(f"build-packages: contents[{i}]: type '{kind}' is not supported")
        info = c.get("file_info") or {}
        mode = int(info["mode"], 8) if "mode" in info else None
        owner, group = info.get("owner", "root"), info.get("group", "root")
        dst = c.get("dst") or ""
        if not dst.startswith("/") or ".." in dst.split("/"):
            raise SystemExit(f"build-packages: contents[{i}]: dst '{dst}' must be an absolute path without '..'")
        if kind == "dir":
            entries.append(Entry(dst.rstrip("/"), None, "dir", mode if mode is not None else 0o755, owner, group))
            continue
        src = os.path.join(base, c.get("src") or "")
        if os.path.isdir(src):
            # like nfpm: a directory's files go below dst, each keeping its relative path
            for root, dirs, files in os.walk(src):
                dirs.sort()
                for name in sorted(files):
                    path = os.path.join(root, name)
                    rel = os.path.relpath(path, src)
                    fmode = mode if mode is not None else stat.S_IMODE(os.stat(path).st_mode)
                    entries.append(Entry(os.path.join(dst, rel), path, kind, fmode, owner, group))
        elif os.path.isfile(src):
            fmode = mode if mode is not None else stat.S_IMODE(os.stat(src).st_mode)
            entries.append(Entry(dst, src, kind, fmode, owner, group))
        else:
            raise SystemExit(f"build-packages: contents[{i}]: src '{c.get('src')}' does not exist (run make publish first?)")

    scripts = {}
    for key, path in (spec.get("scripts") or {}).items():
        if key not in ("preinstall", "postinstall", "preremove", "postremove"):
            raise SystemExit(f"build-packages: scripts.{key} is not supported")
        full = os.path.join(base, path)
        if not os.path.isfile(full):
            raise SystemExit(f"build-packages: scripts.{key}: '{path}' does not exist")
        with open(full, encoding="utf-8") as f:
            scripts[key] = f.read()
    return spec, entries, scripts


def parent_dirs(entries):
    """Directories the package's files live in that the package lists itself (below shared system dirs)."""
    explicit = {e.dst for e in entries if e.is_dir}
    own = set(explicit)
    for e in entries:
        d = os.path.dirname(e.dst)
        while d not in ("/", ""):
            own.add(d)
            d = os.path.dirname(d)
    return sorted(own)


def summary_and_body(description):
    lines = description.strip("\n").split("\n")
    return lines[0].strip(), [l.rstrip() for l in lines[1:]]


def build_deb(spec, entries, scripts, out):
    name, version, arch = spec["name"], spec["version"], spec["arch"]
    target = os.path.join(out, f"{name}_{version}_{arch}.deb")
    with tempfile.TemporaryDirectory(prefix="crsc-deb-") as tmp:
        root = os.path.join(tmp, "root")
        os.makedirs(os.path.join(root, "DEBIAN"))
        for d in parent_dirs(entries):
            os.makedirs(root + d, exist_ok=True)
            os.chmod(root + d, 0o755)
        for e in entries:
            if e.is_dir:
                os.chmod(root + e.dst, e.mode)
                continue
            shutil.copyfile(e.src, root + e.dst)
            os.chmod(root + e.dst, e.mode)
        if any((e.owner, e.group) != ("root", "root") for e in entries):
            raise SystemExit("build-packages: owners other than root:root need nfpm")
        size_kib = sum(os.path.getsize(root + e.dst) for e in entries if not e.is_dir) // 1024 + len(parent_dirs(entries))
        summary, body = summary_and_body(spec["description"])
        control = [
            f"Package: {name}",
            f"Version: {version}",
            f"Architecture: {arch}",
            f"Maintainer: {spec['maintainer']}",
            f"Installed-Size: {size_kib}",
        ]
        if spec.get("depends"):
            control.append("Depends: " + ", ".join(spec["depends"]))
        for key, field in (("section", "Section"), ("priority", "Priority"), ("homepage", "Homepage")):
            if spec.get(key):
                control.append(f"{field}: {spec[key]}")
        control.append(f"Description: {summary}")
        control += [" " + (l if l.strip() else ".") for l in body]
        with open(os.path.join(root, "DEBIAN", "control"), "w", encoding="utf-8") as f:
            f.write("\n".join(control) + "\n")
        conffiles = [e.dst for e in entries if e.is_config]
        if conffiles:
            with open(os.path.join(root, "DEBIAN", "conffiles"), "w", encoding="utf-8") as f:
                f.write("\n".join(conffiles) + "\n")
        for key, deb_name in (("preinstall", "preinst"), ("postinstall", "postinst"),
                              ("preremove", "prerm"), ("postremove", "postrm")):
            if key in scripts:
                path = os.path.join(root, "DEBIAN", deb_name)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(scripts[key])
                os.chmod(path, 0o755)
        os.chmod(os.path.join(root, "DEBIAN"), 0o755)
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", root, target],
                       check=True, stdout=subprocess.DEVNULL)
    return target


def build_rpm(spec, entries, scripts, out):
    name, version = spec["name"], spec["version"]
    arch = RPM_ARCH.get(spec["arch"], spec["arch"])
    depends = ((spec.get("overrides") or {}).get("rpm") or {}).get("depends") or spec.get("depends") or []
    summary, body = summary_and_body(spec["description"])
    with tempfile.TemporaryDirectory(prefix="crsc-rpm-") as tmp:
        sources = os.path.join(tmp, "sources")
        os.makedirs(sources)
        files = []
        for d in parent_dirs(entries):
            explicit = next((e for e in entries if e.is_dir and e.dst == d), None)
            # only crsc's own directories: /usr/bin, /etc, /lib/systemd/system... belong to the system
            if explicit is not None or d.startswith(f"/usr/share/{name}"):
                mode = explicit.mode if explicit else 0o755
                files.append(f"%dir %attr({mode:04o}, root, root) {d}")
        install = []
        for n, e in enumerate(entries):
            if e.is_dir:
                install.append(f"mkdir -p %{{buildroot}}{e.dst}")
                continue
            staged = os.path.join(sources, f"f{n}")
            shutil.copyfile(e.src, staged)
            install.append(f"install -D -m {e.mode:04o} {staged} %{{buildroot}}{e.dst}")
            prefix = "%config(noreplace) " if e.kind == "config|noreplace" else "%config " if e.kind == "config" else ""
            files.append(f"{prefix}%attr({e.mode:04o}, {e.owner}, {e.group}) {e.dst}")
        spec_lines = [
            # the binary is published stripped; no debug packages, no build-id links, no automatic dependencies
            "%define debug_package %{nil}",
            "%define _build_id_links none",
            "%global __os_install_post %{nil}",
            f"Name: {name}",
            f"Version: {version}",
            "Release: 1",
            f"Summary: {summary}",
            f"License: {spec.get('license', 'unknown')}",
            f"BuildArch: {arch}",
            "AutoReqProv: no",
        ]
        if spec.get("homepage"):
            spec_lines.append(f"URL: {spec['homepage']}")
        if spec.get("maintainer"):
            spec_lines.append(f"Packager: {spec['maintainer']}")
        spec_lines += [f"Requires: {d}" for d in depends]
        spec_lines += ["", "%description", "\n".join(body).strip() or summary, "", "%install"] + install
        for key, section in (("preinstall", "%pre"), ("postinstall", "%post"),
                             ("preremove", "%preun"), ("postremove", "%postun")):
            if key in scripts:
                spec_lines += ["", section, scripts[key].rstrip("\n")]
        spec_lines += ["", "%files"] + files
        spec_path = os.path.join(tmp, f"{name}.spec")
        with open(spec_path, "w", encoding="utf-8") as f:
            f.write("\n".join(spec_lines) + "\n")
        subprocess.run(["rpmbuild", "-bb", "--quiet", "--target", arch,
                        "--define", f"_topdir {tmp}/top", "--define", f"_rpmdir {tmp}/rpms",
                        "--define", "_rpmfilename %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm",
                        "--define", f"_tmppath {tmp}/tmp", "--define", "_binary_payload w6.gzdio",
                        spec_path], check=True, stdout=subprocess.DEVNULL)
        built = os.path.join(tmp, "rpms", f"{name}-{version}-1.{arch}.rpm")
        target = os.path.join(out, os.path.basename(built))
        shutil.copyfile(built, target)
    return target


def main():
    ap = argparse.ArgumentParser(description="Build the .deb and .rpm that nfpm.yaml describes, without nfpm.")
    ap.add_argument("--config", default="nfpm.yaml")
    ap.add_argument("--out", default="obj/packages")
    ap.add_argument("--only", choices=["deb", "rpm"])
    ap.add_argument("--print", action="store_true", help="print the parsed description (for tests) and build nothing")
    a = ap.parse_args()
    spec, entries, scripts = load(a.config)
    if a.print:
        import json
        json.dump({"spec": spec, "entries": [vars(e) | {"mode": f"{e.mode:04o}"} for e in entries],
                   "scripts": sorted(scripts)}, sys.stdout, indent=2)
        print()
        return
    os.makedirs(a.out, exist_ok=True)
    missing = [t for t, k in (("dpkg-deb", "deb"), ("rpmbuild", "rpm")) if a.only in (None, k) and not shutil.which(t)]
    if missing:
        raise SystemExit(f"build-packages: {', '.join(missing)} not found (Debian packages dpkg and rpm; make deps)")
    if a.only in (None, "deb"):
        print(build_deb(spec, entries, scripts, a.out))
    if a.only in (None, "rpm"):
        print(build_rpm(spec, entries, scripts, a.out))


if __name__ == "__main__":
    main()
