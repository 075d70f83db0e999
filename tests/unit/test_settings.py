"""Settings from defaults, environment and flags; refusal of inconsistent values."""

import pytest

from infrastructure.settings import SettingsError, load_settings


def test_defaults_are_the_embedded_store_and_kamailio_like_keys():
    settings = load_settings(env={})
    assert settings.store.url == "sqlite:///./pua-reginfo.db"
    assert settings.usrloc.use_domain is False and settings.notify.mode == "rfc"
    assert settings.registrar.min_expires == 60 and settings.security.trusted == (
        "127.0.0.0/8", "::1/128")


def test_environment_overrides_defaults_and_flags_override_environment():
    env = {"PUA_REGINFO_USRLOC_USE_DOMAIN": "yes", "PUA_REGINFO_STORE_URL": "sqlite:///env.db",
           "PUA_REGINFO_REGISTRAR_DOMAINS": "a.example, b.example", "UNRELATED": "x"}
    settings = load_settings(env=env, overrides={"store": {"url": "sqlite:///flag.db"}})
    assert settings.usrloc.use_domain is True
    assert settings.registrar.domains == ("a.example", "b.example")
    assert settings.store.url == "sqlite:///flag.db"
    assert load_settings(env=env, overrides={"store": {"url": None}}).store.url == "sqlite:///env.db"


def test_the_aor_policy_follows_usrloc_and_default_domain():
    settings = load_settings(env={"PUA_REGINFO_USRLOC_CASE_SENSITIVE": "1",
                                  "PUA_REGINFO_REGINFO_DEFAULT_DOMAIN": "example.net"})
    policy = settings.aor_policy
    assert policy.case_sensitive and not policy.use_domain and policy.default_domain == "example.net"


@pytest.mark.parametrize("env, message", [
    ({"PUA_REGINFO_USRLOC_USE_DOMAIN": "maybe"}, "must be true or false"),
    ({"PUA_REGINFO_REGISTRAR_MIN_EXPIRES": "ten"}, "must be a whole number"),
    ({"PUA_REGINFO_REGISTRAR_MIN_EXPIRES": "7200"}, "min_expires <= default_expires"),
    ({"PUA_REGINFO_NOTIFY_MODE": "opensips"}, "mode must be 'rfc' or 'kamailio'"),
    ({"PUA_REGINFO_NOTIFY_REPLY_CODE": "204"}, "reply_code must be 200 or 202"),
    ({"PUA_REGINFO_SECURITY_TRUSTED": "10.0.0.0/33"}, "is not a network"),
    ({"PUA_REGINFO_REGINFO_OUTBOUND_PROXY": "http://proxy"}, "outbound_proxy"),
    ({"PUA_REGINFO_NODE_ID": " "}, "[node] id must not be empty"),
    ({"PUA_REGINFO_STORE_RETAIN_DAYS": "0"}, "[store] retain_days must be at least 1"),
    ({"PUA_REGINFO_STORE_RETAIN_DAYS": "30.5"}, "[store] retain_days must be a whole number"),
    ({"PUA_REGINFO_LISTEN_UDP_WORKERS": "-1"}, "[listen] udp_workers must be 0 to 64"),
    ({"PUA_REGINFO_LISTEN_UDP_WORKERS": "65"}, "[listen] udp_workers must be 0 to 64"),
    ({"PUA_REGINFO_NOTIFIER_MIN_EXPIRES": "0"}, "[notifier] needs 0 < min_expires"),
    ({"PUA_REGINFO_NOTIFIER_MAX_EXPIRES": "100"}, "[notifier] needs 0 < min_expires"),
    ({"PUA_REGINFO_NOTIFIER_PEERS": "10.0.0.0/33"}, "[notifier] peers: '10.0.0.0/33'"),
    ({"PUA_REGINFO_NOTIFIER_PEERS": "sip:"}, "[notifier] peers"),
    ({"PUA_REGINFO_NOTIFIER_ENABLED": "sometimes"}, "must be true or false"),
])
def test_inconsistent_values_are_refused_with_the_key_named(env, message):
    with pytest.raises(SettingsError) as error:
        load_settings(env=env)
    assert message in str(error.value)


def test_serve_takes_udp_alone_unless_workers_are_asked_for():
    assert load_settings(env={}).listen.udp_workers == 0
    assert load_settings(env={"PUA_REGINFO_LISTEN_UDP_WORKERS": "4"}).listen.udp_workers == 4


def test_the_notifier_role_is_on_by_default_with_rfc_3680_lifetimes():
    notifier = load_settings(env={}).notifier
    assert (notifier.enabled, notifier.default_expires, notifier.min_expires,
            notifier.max_expires, notifier.watch_own, notifier.peers) == (
        True, 3761, 60, 86400, False, ())
    peers = load_settings(env={"PUA_REGINFO_NOTIFIER_PEERS": "10.1.0.0/16, sip:reginfo@b"})
    assert peers.notifier.peers == ("10.1.0.0/16", "sip:reginfo@b")


def test_an_unknown_environment_variable_is_refused_like_an_unknown_key():
    with pytest.raises(SettingsError, match="unknown environment variable "
                                            "PUA_REGINFO_REGISTAR_MIN_EXPIRES"):
        load_settings(env={"PUA_REGINFO_REGISTAR_MIN_EXPIRES": "10"})
    with pytest.raises(SettingsError, match=r"unknown setting \[store\] urll"):
        load_settings(env={"PUA_REGINFO_STORE_URLL": "sqlite:///x.db"})
    assert load_settings(env={"OTHER_PUA_REGINFO_X": "1"}).store.url  # not ours: ignored


def test_unknown_keys_in_overrides_are_refused():
    with pytest.raises(SettingsError, match=r"unknown setting \[usrloc\] use_domian"):
        load_settings(env={}, overrides={"usrloc": {"use_domian": True}})


def test_the_whole_history_is_kept_unless_retain_days_is_set():
    assert load_settings(env={}).store.retain_days is None
    assert load_settings(env={"PUA_REGINFO_STORE_RETAIN_DAYS": ""}).store.retain_days is None
    assert load_settings(env={"PUA_REGINFO_STORE_RETAIN_DAYS": "30"}).store.retain_days == 30
