#!/usr/bin/env python3
"""deploy/nginx-social-api.conf, made to run on loopback for the tests that put nginx in
front of the service (tests/deploy/nginx_test.py, the browser suite of tests/contract.sh).

The shipped site is used as it is, but for its ports and paths: the upstream's two `server`
lines name the test's instances, `listen 80` and `listen 443` free ports of loopback, the
certificate is one made for the run (for api.example.org and 127.0.0.1) and the access log
is in `workdir`; a test may also shorten `proxy_read_timeout` (to see an event stream
outlive it without waiting out the shipped value) or change the rate of a `limit_req_zone`
(for a load that is no client's). Each of those lines must be found as often as the shipped
file has it, so that a change to the file's shape fails here, loudly, instead of testing
something else. The site is wrapped in a minimal nginx.conf whose files stay in `workdir`.

    python3 tests/deploy/nginx_site.py WORKDIR HTTP_PORT HTTPS_PORT UPSTREAM [UPSTREAM]

writes WORKDIR/nginx.conf, the certificate WORKDIR/cert.pem and its key WORKDIR/key.pem.
"""
import argparse
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SITE = os.path.join(ROOT, "deploy", "nginx-social-api.conf")


def access_log(workdir):
    """Where the rendered site writes its access log."""
    return os.path.join(workdir, "social-api.access.log")


def certificate(workdir):
    """The run's self-signed certificate and key in `workdir`, for the name the site serves
    (api.example.org, as a browser mapped to loopback asks for it) and for 127.0.0.1 (as a
    test's own client reaches it); returns the certificate's path, which clients trust."""
    cert = os.path.join(workdir, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=api.example.org",
                    "-addext", "subjectAltName=DNS:api.example.org,IP:127.0.0.1",
                    "-keyout", os.path.join(workdir, "key.pem"), "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert


def render(workdir, http_port, https_port, upstreams, read_timeout=None, rates=None):
    """The nginx.conf text; creates the temporary folders nginx wants in `workdir`.
    `read_timeout` (seconds) replaces the value of the site's one `proxy_read_timeout`;
    `rates` ({zone: "100r/s"}) the rate of those `limit_req_zone`s."""
    with open(SITE) as f:
        site = f.read()
    second = f"server {upstreams[1]} " if len(upstreams) > 1 else None
    # (pattern, replacement, how often the shipped site has it)
    edits = [
        (r"server 127\.0\.0\.1:8001 ", f"server {upstreams[0]} ", 1),
        (r"server 127\.0\.0\.1:8002 " if second else r"\n *server 127\.0\.0\.1:8002 [^\n]*", second or "", 1),
        (r"listen 80;", f"listen 127.0.0.1:{http_port};", 1),
        (r"listen \[::\]:80;", "", 1),
        (r"(?m)^(\s*)listen 443 ", rf"\g<1>listen 127.0.0.1:{https_port} ", 1),
        (r"listen \[::\]:443 [^;]*;", "", 1),
        (r"ssl_certificate +\S+;", f"ssl_certificate {workdir}/cert.pem;", 1),
        (r"ssl_certificate_key +\S+;", f"ssl_certificate_key {workdir}/key.pem;", 1),
        (r"access_log /var/log/nginx/social-api\.access\.log ", f"access_log {access_log(workdir)} ", 2),
    ]
    if read_timeout:
        edits.append((r"(?m)^(\s*proxy_read_timeout )\d+s;", rf"\g<1>{read_timeout}s;", 1))
    for zone, rate in (rates or {}).items():
        edits.append((rf"(limit_req_zone \S+ zone={zone}:\S+ rate=)\S+;", rf"\g<1>{rate};", 1))
    for pattern, replacement, expected in edits:
        site, count = re.subn(pattern, replacement, site)
        if count != expected:
            sys.exit(f"{SITE}: {pattern!r} matched {count} times, not {expected}")
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


def write(workdir, http_port, https_port, upstreams, **options):
    """Writes `workdir`/nginx.conf (see render) and the run's certificate; returns the
    certificate's path."""
    with open(os.path.join(workdir, "nginx.conf"), "w") as f:
        f.write(render(workdir, http_port, https_port, upstreams, **options))
    return certificate(workdir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir")
    parser.add_argument("http_port", type=int)
    parser.add_argument("https_port", type=int)
    parser.add_argument("upstreams", nargs="+", help="host:port of an instance (one or two)")
    args = parser.parse_args()
    write(args.workdir, args.http_port, args.https_port, args.upstreams)


if __name__ == "__main__":
    main()
