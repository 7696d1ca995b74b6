"""Every hsm_secret format Core Lightning v26.06.6 writes gives invoiced the node id that the real
lightningd reports for the same file: plain 32 bytes, encrypted (`lightning-hsmtool encrypt`),
and the BIP39-mnemonic format new nodes write, without and with a passphrase."""

import os
import subprocess

import pytest

from conftest import Invoiced, Lightningd, cln_bin

MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"


def hsmtool(*args, stdin=""):
    out = subprocess.run([os.path.join(cln_bin(), "lightning-hsmtool"), *args], input=stdin, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def node_id_from_lightningd(tmp, secret_bytes, passphrase=None):
    node = Lightningd(os.path.join(tmp, "ln"), secret_bytes)
    node.start(["--hsm-passphrase"] if passphrase else [], passphrase=passphrase)
    try:
        return node.rpc().getinfo()["id"]
    finally:
        node.stop()


def invoiced_with(tmp, secret_bytes, passphrase=None, name="inv"):
    inv = Invoiced(os.path.join(tmp, name), secret_bytes)
    extra = []
    if passphrase is not None:
        path = os.path.join(tmp, name + ".pass")
        with open(path, "w") as f:
            f.write(passphrase + "\n")
        os.chmod(path, 0o600)
        extra = ["--hsm-passphrase-file", path]
    return inv, extra


def node_id_from_invoiced(tmp, secret_bytes, passphrase=None):
    inv, extra = invoiced_with(tmp, secret_bytes, passphrase)
    inv.start(extra)
    try:
        return inv.rpc().getinfo()["id"]
    finally:
        inv.stop()


def test_a_new_nodes_mnemonic_hsm_secret(tmpdir_short):
    node = Lightningd(os.path.join(tmpdir_short, "ln"))
    node.start()
    want = node.rpc().getinfo()["id"]
    node.stop()
    secret = node.hsm_secret()
    assert len(secret) > 73 and secret[:32] == bytes(32), "v26 writes a mnemonic without passphrase"
    assert node_id_from_invoiced(tmpdir_short, secret) == want


def test_plain_hsm_secret(tmpdir_short):
    secret = os.urandom(32)
    assert node_id_from_invoiced(tmpdir_short, secret) == node_id_from_lightningd(tmpdir_short, secret)


def test_mnemonic_with_passphrase(tmpdir_short):
    path = os.path.join(tmpdir_short, "hsm_secret")
    passphrase = os.urandom(8).hex()
    hsmtool("generatehsm", path, stdin=f"{MNEMONIC}\n{passphrase}\n")
    with open(path, "rb") as f:
        secret = f.read()
    want = node_id_from_lightningd(tmpdir_short, secret, passphrase)
    assert hsmtool("getnodeid", path, stdin=passphrase + "\n").strip().endswith(want)
    assert node_id_from_invoiced(tmpdir_short, secret, passphrase) == want
    refused(tmpdir_short, secret, None, "give its passphrase with --hsm-passphrase-file")
    refused(tmpdir_short, secret, "not-it", "Wrong passphrase")


def test_encrypted_hsm_secret(tmpdir_short):
    path = os.path.join(tmpdir_short, "hsm_secret")
    with open(path, "wb") as f:
        f.write(os.urandom(32))
    passphrase = os.urandom(6).hex()
    hsmtool("encrypt", path, stdin=f"{passphrase}\n{passphrase}\n")
    with open(path, "rb") as f:
        secret = f.read()
    assert len(secret) == 73
    want = node_id_from_lightningd(tmpdir_short, secret, passphrase)
    assert hsmtool("getnodeid", path, stdin=passphrase + "\n").strip().endswith(want)
    assert node_id_from_invoiced(tmpdir_short, secret, passphrase) == want
    refused(tmpdir_short, secret, "wrong", "Wrong passphrase")


def refused(tmp, secret, passphrase, message):
    name = "refused-" + os.urandom(3).hex()
    inv, extra = invoiced_with(tmp, secret, passphrase, name)
    inv.start(extra, check=False)
    assert inv.proc.wait(timeout=120) != 0
    assert message in inv.stderr()
