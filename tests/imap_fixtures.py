"""A real Dovecot IMAP server (Debian's dovecot-imapd), started by the tests on loopback with
its own configuration and data under a temporary folder, one passwd-file user, plain IMAP
and implicit TLS (a self-signed certificate made here), stopped by its PID."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.server_process import ServerProcess, free_port, start_server

DOVECOT = "/usr/sbin/dovecot"


@dataclass
class Dovecot:
    root: Path
    port: int
    tls_port: int
    user: str
    password: str
    ca_file: Path
    process: ServerProcess          # its sockets' folder goes when it stops

    def stop(self) -> None:
        self.process.stop()


def _certificate(folder: Path) -> tuple[Path, Path]:
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return key, cert


def start(root: Path, user: str = "replies@relance.test", password: str = "s3cret-imap") -> Dovecot:
    """Dovecot serving `user` on two loopback ports (plain, TLS), its files under `root`."""
    if not Path(DOVECOT).exists():
        raise RuntimeError("these tests need Dovecot: install the dovecot-imapd package "
                           "(`make test` does, as root)")
    root.mkdir(parents=True, exist_ok=True)
    # every process reads files under `root` (its parents may be 0700, as pytest's are): the
    # mail, auth and login processes run as the user who runs the tests
    me = pwd.getpwuid(os.getuid())
    # Dovecot never reads mail as root either: as root, the mailbox belongs to Debian's
    # `dovecot` user
    owner = pwd.getpwnam("dovecot") if os.getuid() == 0 else me
    (root / "state").mkdir(exist_ok=True)
    key, cert = _certificate(root)
    (root / "passwd").write_text(f"{user}:{{PLAIN}}{password}::::::\n")
    port, tls_port = free_port(), free_port()
    # except the login processes, which Dovecot never runs as root: as root, they run as
    # Debian's `dovenull` and reach the sockets in a short folder of their own (UNIX socket
    # paths are limited to 108 bytes, and pytest's folders are 0700 and long)
    internal = me.pw_name
    login = "dovenull" if os.getuid() == 0 else me.pw_name
    sockets = Path(tempfile.mkdtemp(prefix="dc-", dir="/tmp"))
    os.chmod(sockets, 0o755)
    # ... where the mailbox lives too, for the same reason (its owner must reach it)
    (sockets / "home").mkdir()
    os.chown(sockets / "home", owner.pw_uid, owner.pw_gid)
    conf = root / "dovecot.conf"
    conf.write_text(f"""
base_dir = {sockets}
state_dir = {root}/state
instance_name = relance-test-{port}
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name}
default_login_user = {login}
first_valid_uid = {owner.pw_uid}
last_valid_uid = {owner.pw_uid}
first_valid_gid = {owner.pw_gid}
last_valid_gid = {owner.pw_gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={owner.pw_uid} gid={owner.pw_gid} home={sockets}/home/%n
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service auth {{
  user = {me.pw_name}
}}
service imap-login {{
  user = {login}
}}
service stats {{
  chroot =
}}
""")
    # Dovecot goes to the background: its PID is in the sockets' folder; ready once it greets
    process = start_server("Dovecot", [DOVECOT, "-c", str(conf)], port=port,
                           output=root / "start.log", pidfile=sockets / "master.pid",
                           logs=(root / "dovecot.log",), folder=sockets, timeout=15,
                           answers=lambda s: s.recv(100).startswith(b"* OK"))
    return Dovecot(root, port, tls_port, user, password, cert, process)

def append(server: Dovecot, raw: bytes, mailbox: str = "INBOX") -> None:
    """Put one mail in the mailbox, as a mail server delivering it would (IMAP APPEND)."""
    import imaplib
    with imaplib.IMAP4("127.0.0.1", server.port) as imap:
        imap.login(server.user, server.password)
        imap.append(mailbox, None, None, raw)
        imap.logout()
