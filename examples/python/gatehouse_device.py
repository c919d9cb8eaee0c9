#!/usr/bin/python3
"""A Gatehouse device in Python with paho-mqtt (docs/device-protocol.md).

It does what a real device does:
  1. first boot: claim provisioning with a claim bundle (cert.pem, key.pem, ca.pem from
     `gatehouse claim create`): makes its own P-256 key and CSR, asks for a certificate over MQTT,
     keeps the result in --state-dir (key 0600);
  2. connects with its own certificate (clientId = certificate CN = device id), publishes telemetry;
  3. applies the settings documents it is sent and reports them on settings/reported;
  4. renews its certificate over MQTT when the broker's renewal notice says the window is open, then
     reconnects on the new certificate.
Each step prints one JSON line on stdout. Needs python3-paho-mqtt (1.6) and python3-cryptography.
"""
import argparse
import json
import os
import queue
import secrets
import ssl
import sys
import time

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ANSWER_TIMEOUT_S = 30


def say(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def new_key_and_csr(device_id):
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)]))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key_pem.decode(), csr.public_bytes(serialization.Encoding.PEM).decode()


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class Session:
    """One MQTT connection over mutual TLS; messages arrive on a queue."""

    def __init__(self, host, port, client_id, cert, key, ca):
        self.messages = queue.Queue()
        self.connected = queue.Queue()
        self.client = mqtt.Client(client_id=client_id, clean_session=True, protocol=mqtt.MQTTv311)
        self.client.tls_set(ca_certs=ca, certfile=cert, keyfile=key, cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_connect = lambda c, u, f, rc: self.connected.put(rc)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.client.connect(host, port, keepalive=60)
        self.client.loop_start()
        rc = self.connected.get(timeout=ANSWER_TIMEOUT_S)
        if rc != 0:
            self.close()
            raise RuntimeError(f"CONNACK {rc}: refused")

    def subscribe(self, *topics):
        for t in topics:
            self.client.subscribe(t, qos=1)

    def publish(self, topic, body):
        self.client.publish(topic, json.dumps(body), qos=1).wait_for_publish()

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def claim(args):
    """Claim provisioning (provisioning/{nonce}/request and /response)."""
    nonce = secrets.token_urlsafe(18)
    key_pem, csr_pem = new_key_and_csr(args.device_id)
    d = args.claim_dir
    s = Session(args.host, args.port, f"claim:{nonce}", f"{d}/cert.pem", f"{d}/key.pem", f"{d}/ca.pem")
    try:
        s.subscribe(f"provisioning/{nonce}/response")
        s.publish(f"provisioning/{nonce}/request", {"deviceId": args.device_id, "csr": csr_pem, "requestId": "claim-1"})
        _, payload = s.messages.get(timeout=ANSWER_TIMEOUT_S)
    finally:
        s.close()
    answer = json.loads(payload)
    if not answer.get("ok"):
        raise RuntimeError(f"claim refused: {answer['error']['code']}: {answer['error']['message']}")
    save(args.state_dir, key_pem, answer)
    say("claimed", deviceId=args.device_id, serial=answer["serial"])


def save(state_dir, key_pem, answer):
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    write_private(f"{state_dir}/key.pem", key_pem)
    with open(f"{state_dir}/cert.pem", "w") as f:
        f.write(answer["certificate"])
    with open(f"{state_dir}/ca.pem", "w") as f:
        f.write(answer["chain"])


def run(args):
    st = args.state_dir
    topic = f"devices/{args.device_id}"
    applied = {"version": None, "settings": {}}
    renewed = False
    sent = 0
    while True:
        s = Session(args.host, args.port, args.device_id, f"{st}/cert.pem", f"{st}/key.pem", f"{st}/ca.pem")
        say("connected", deviceId=args.device_id)
        s.subscribe(f"{topic}/settings", f"{topic}/renewal/notice", f"{topic}/renewal/response")
        pending_key = None
        switch = False
        deadline = time.monotonic() + args.run_seconds
        while time.monotonic() < deadline and not switch:
            if sent < args.telemetry:
                sent += 1
                s.publish(f"{topic}/telemetry", {"seq": sent, "temperature": 20 + sent % 5})
            try:
                t, payload = s.messages.get(timeout=args.interval)
            except queue.Empty:
                continue
            body = json.loads(payload)
            if t == f"{topic}/settings" and (applied["version"] is None or body["version"] > applied["version"]):
                applied = {"version": body["version"], "settings": body["settings"]}
                s.publish(f"{topic}/settings/reported", applied)
                say("settings", version=body["version"], settings=body["settings"])
            elif t == f"{topic}/renewal/notice" and not renewed and pending_key is None:
                say("renewal-notice", windowEndsAt=body["windowEndsAt"])
                pending_key, csr = new_key_and_csr(args.device_id)
                s.publish(f"{topic}/renewal/request", {"csr": csr, "requestId": "renew-1"})
            elif t == f"{topic}/renewal/response" and pending_key is not None:
                if not body.get("ok"):
                    raise RuntimeError(f"renewal refused: {body['error']['code']}: {body['error']['message']}")
                save(st, pending_key, body)
                renewed = switch = True
                say("renewed", serial=body["serial"], notAfter=body["notAfter"])
        s.close()
        if not switch:
            say("done", sent=sent, renewed=renewed)
            return


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8883)
    p.add_argument("--device-id", required=True)
    p.add_argument("--claim-dir", help="a claim bundle folder (first boot only)")
    p.add_argument("--state-dir", required=True, help="where the device keeps its key and certificate")
    p.add_argument("--telemetry", type=int, default=10, help="readings to send")
    p.add_argument("--interval", type=float, default=0.2, help="seconds between readings")
    p.add_argument("--run-seconds", type=float, default=10, help="how long each connection runs")
    args = p.parse_args()
    try:
        if not os.path.exists(f"{args.state_dir}/cert.pem"):
            if not args.claim_dir:
                raise RuntimeError("no certificate in --state-dir yet: give --claim-dir for the first boot")
            claim(args)
        run(args)
    except Exception as e:  # one line a person can act on, exit 1
        say("error", message=str(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
