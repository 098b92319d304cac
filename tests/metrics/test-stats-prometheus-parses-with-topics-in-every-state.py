#!/usr/bin/python3
"""`weightbus stats --prometheus` prints what prometheus_client's parser reads, every family documented and
typed, with the figures of topics in every state: a live publisher whose two readers hold leases (lag 2), a topic
left dirty by a publisher killed mid-update (R = 1), one whose publisher was killed after publishing (R = 2), one
never published (no age), one whose name needs escaping, a sharded topic with both ranks attached and one whose
rank 1 left; and the broker's limits, use and counters."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from metrics_fixture import Broker, Scenario, eventually, families, metric_parser, value  # noqa: E402

metric_parser()  # skips at once without prometheus_client

with Broker("--max-topics", "16", "--max-clients", "12", "--leases-per-client", "7", "--max-ranks", "4") as broker:
    live = Scenario(broker, "live", "policy")
    ranks = Scenario(broker, "ranks", "model")
    dirty = Scenario(broker, "dirty", "half-written")
    dead = Scenario(broker, "dead", "orphan")
    dirty.kill()
    dead.kill()

    def prometheus():
        status, out, err = broker.cli("stats", "--prometheus")
        assert status == 0, f"stats --prometheus exited {status}: {err}"
        return families(out)

    # The broker notices the deaths when their sockets close: a scrape after that shows both publishers gone.
    m = eventually(lambda: (lambda p: p if value(p, "weightbus_topic_publisher_alive", topic="orphan") == 0
                            and value(p, "weightbus_topic_dirty", topic="half-written") == 1 else None)(prometheus()),
                   "the killed publishers are reclaimed")

    for name, (kind, _) in m.items():
        assert kind == ("counter" if name.endswith(("publishes", "reclaims", "reclaimed_leases", "adoptions"))
                        else "gauge"), (name, kind)

    # The live topic: 3 versions, its publisher attached, two readers with a lease each, the older 2 behind.
    topic = {"topic": "policy"}
    assert value(m, "weightbus_topic_latest_version", **topic) == 3
    assert 0 <= value(m, "weightbus_topic_latest_age_seconds", **topic) < 60
    assert value(m, "weightbus_topic_publisher_alive", **topic) == 1
    assert value(m, "weightbus_topic_dirty", **topic) == 0
    assert value(m, "weightbus_topic_readers", **topic) == 2
    assert value(m, "weightbus_topic_leases", **topic) == 2
    assert value(m, "weightbus_topic_max_reader_lag_versions", **topic) == 2
    assert 0 < value(m, "weightbus_topic_longest_lease_hold_seconds", **topic) < 60
    assert value(m, "weightbus_topic_bytes", **topic) >= 3 * 1024 * 4  # three replicas of 1024 f32

    # Dirty: version 2 was half-written in place when its publisher died; version 1 stays the latest.
    topic = {"topic": "half-written"}
    assert value(m, "weightbus_topic_latest_version", **topic) == 1
    assert value(m, "weightbus_topic_publisher_alive", **topic) == 0
    assert value(m, "weightbus_topic_leases", **topic) == 0
    assert value(m, "weightbus_topic_max_reader_lag_versions", **topic) == 0

    # Dead publisher, R = 2: the topic is whole, nobody publishes it.
    topic = {"topic": "orphan"}
    assert value(m, "weightbus_topic_latest_version", **topic) == 1
    assert value(m, "weightbus_topic_dirty", **topic) == 0
    assert value(m, "weightbus_topic_readers", **topic) == 0

    # Never published: version 0 and no age; a name with quotes, a backslash and UTF-8 comes back whole.
    assert value(m, "weightbus_topic_latest_version", topic="policy-never") == 0
    assert value(m, "weightbus_topic_latest_age_seconds", topic="policy-never") is None
    assert value(m, "weightbus_topic_latest_version", topic='policy "odd" \\ µ') == 1

    # Sharded: version 1 committed by the broker; a publisher is alive only while every rank has one.
    for name, alive in (("model-whole", 1), ("model-half", 0)):
        assert value(m, "weightbus_topic_latest_version", topic=name) == 1, name
        assert 0 <= value(m, "weightbus_topic_latest_age_seconds", topic=name) < 60, name
        assert value(m, "weightbus_topic_publisher_alive", topic=name) == alive, name

    # The broker: who it is, its limits as given, what is used, what it counted.
    info = [dict(labels) for (_, labels) in m["weightbus_broker_info"][1]]
    segment = f"/weightbus-{os.getuid()}-{broker.name}"
    assert info == [{"version": "0.1.0", "name": broker.name, "segment": segment}], info
    assert value(m, "weightbus_broker_uptime_seconds") > 0
    limits = {"max-topics": 16, "max-clients": 12, "leases-per-client": 7, "max-ranks": 4}
    for flag, limit in limits.items():
        assert value(m, "weightbus_broker_capacity_limit", limit=flag) == limit, flag
    assert value(m, "weightbus_broker_capacity_used", limit="max-topics") == 7
    assert value(m, "weightbus_broker_capacity_used", limit="max-tensors") == 11  # a sharded "w" is 3 entries
    assert value(m, "weightbus_broker_capacity_used", limit="max-ranks") == 4  # all of them
    assert value(m, "weightbus_broker_capacity_used", limit="leases-per-client") == 1
    clients = value(m, "weightbus_broker_clients")
    assert clients == value(m, "weightbus_broker_capacity_used", limit="max-clients") == 8  # live 3, ranks 4, this
    assert value(m, "weightbus_broker_publishes", "weightbus_broker_publishes_total") == 8  # 3 + 1 + 1 + 1 + 2
    assert value(m, "weightbus_broker_reclaims", "weightbus_broker_reclaims_total") >= 2  # the dead, earlier scrapes
    assert value(m, "weightbus_broker_reclaimed_leases", "weightbus_broker_reclaimed_leases_total") == 0
    assert value(m, "weightbus_broker_adoptions", "weightbus_broker_adoptions_total") == 0

    # One topic asked for: its series alone, the broker's all the same.
    status, out, err = broker.cli("stats", "orphan", "--prometheus")
    assert status == 0, err
    one = families(out)
    assert [dict(labels) for (_, labels) in one["weightbus_topic_latest_version"][1]] == [{"topic": "orphan"}]
    assert value(one, "weightbus_broker_clients") == clients

    # Two formats at once is a usage error.
    status, out, err = broker.cli("stats", "--prometheus", "--json")
    assert status == 2 and "--prometheus and --json" in err, (status, err)
    live.finish()
    ranks.finish()
print("stats --prometheus: parsed, every state as expected")
