#!/usr/bin/env python3
"""deploy/nginx-social-api.conf, made to run on loopback for the tests that put nginx in
front of the service (tests/deploy/nginx_test.py, the browser suite of tests/contract.sh).

The shipped site is used as it is, but for its ports: the upstream's two `server` lines name
the test's instances, `listen 80` a free port of loopback, and with TLS the lines certbot
would enable point at the test's certificate; a test may also shorten `proxy_read_timeout`
(to see an event stream outlive it without waiting out the shipped value). Each of those
lines must be found exactly once, so that a change to the shipped file's shape fails here,
loudly, instead of testing something else. The site is wrapped in a minimal nginx.conf whose
files stay in `workdir`.

    python3 tests/deploy/nginx_site.py WORKDIR HTTP_PORT UPSTREAM [UPSTREAM] [--https PORT]

writes WORKDIR/nginx.conf (with the certificate WORKDIR/cert.pem and key WORKDIR/key.pem
for --https).
"""
import argparse
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def render(workdir, http_port, upstreams, https_port=None, read_timeout=None):
    """The nginx.conf text; creates the temporary folders nginx wants in `workdir`.
    `read_timeout` (seconds) replaces the value of the site's one `proxy_read_timeout`."""
    with open(os.path.join(ROOT, "deploy", "nginx-social-api.conf")) as f:
        site = f.read()
    second = f"server {upstreams[1]} " if len(upstreams) > 1 else None
    edits = [
        (r"server 127\.0\.0\.1:8001 ", f"server {upstreams[0]} "),
        (r"server 127\.0\.0\.1:8002 " if second else r"\n *server 127\.0\.0\.1:8002 [^\n]*", second or ""),
        (r"listen 80;", f"listen 127.0.0.1:{http_port};"),
        (r"listen \[::\]:80;", ""),
    ]
    if read_timeout:
        edits.append((r"(?m)^(\s*proxy_read_timeout )\d+s;", rf"\g<1>{read_timeout}s;"))
    if https_port:
        edits += [
            (r"# listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
            (r"# ssl_certificate +\S+;", f"ssl_certificate {workdir}/cert.pem;"),
            (r"# ssl_certificate_key +\S+;", f"ssl_certificate_key {workdir}/key.pem;"),
        ]
    for pattern, replacement in edits:
        site, count = re.subn(pattern, replacement, site)
        if count != 1:
            sys.exit(f"deploy/nginx-social-api.conf: {pattern!r} matched {count} times, not once")
    for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"]:
        os.makedirs(os.path.join(workdir, sub), exist_ok=True)
    return f"""
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    access_log {workdir}/access.log;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
{site}
}}
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir")
    parser.add_argument("http_port", type=int)
    parser.add_argument("upstreams", nargs="+", help="host:port of an instance (one or two)")
    parser.add_argument("--https", type=int, dest="https_port")
    args = parser.parse_args()
    with open(os.path.join(args.workdir, "nginx.conf"), "w") as f:
        f.write(render(args.workdir, args.http_port, args.upstreams, args.https_port))


if __name__ == "__main__":
    main()
