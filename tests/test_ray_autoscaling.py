"""The one Ray autoscaling settings type and the flags generated from its fields."""

import argparse
import dataclasses

import pytest

from loadlab.ray_autoscaling import DEPLOYMENT, Flags, RayAutoscaling
from server.rayserve.__main__ import options_from_args, parse_args
from simulator.autoscaling.ray_serve import RayServeConfig
from simulator.cli import RAY_FLAGS, parser


def test_every_field_is_a_server_flag_by_its_ray_name():
    args = parse_args([f"--{name.replace('_', '-')}={i + 3}" for i, name in enumerate(RayAutoscaling.field_names())])
    got = options_from_args(args).autoscaling
    assert dataclasses.astuple(got) == tuple(i + 3 for i in range(len(RayAutoscaling.field_names())))
    assert options_from_args(parse_args([])).autoscaling == DEPLOYMENT


def test_simulator_flags_take_the_new_and_the_old_spelling_alike():
    run = ["run", "--ray-min-max", "0,2"]
    old = parser().parse_args([*run, "--ray-upscale-delay", "5", "--ray-look-back", "20", "--ray-graceful-timeout", "7"])
    new = parser().parse_args([*run, "--ray-upscale-delay-s", "5", "--ray-look-back-period-s", "20",
                               "--ray-graceful-shutdown-timeout-s", "7"])
    assert RAY_FLAGS.read(old) == RAY_FLAGS.read(new)
    config = RAY_FLAGS.read(old, min_replicas=0, max_replicas=2)
    assert isinstance(config, RayServeConfig)
    assert (config.upscale_delay_s, config.look_back_period_s, config.graceful_shutdown_timeout_s) == (5.0, 20.0, 7.0)
    assert config.downscale_delay_s == 600.0 and config.max_replicas == 2     # the rest: the model's defaults


def test_a_flag_keeps_its_bounds_and_type():
    with pytest.raises(SystemExit):
        parser().parse_args(["run", "--ray-look-back", "0.5"])                # below a second
    flags = Flags(RayAutoscaling(), prefix="x-", only=("max_replicas", "upscale_delay_s"))
    p = argparse.ArgumentParser()
    flags.add_to(p)
    args = p.parse_args(["--x-max-replicas", "4"])
    assert args.x_max_replicas == 4 and isinstance(args.x_max_replicas, int) and args.x_upscale_delay_s == 30.0


def test_changed_and_the_ray_config_leave_unset_fields_to_ray():
    assert DEPLOYMENT.changed() == {"min_replicas": 0, "max_replicas": 2, "target_ongoing_requests": 1.0,
                                    "max_ongoing_requests": 1, "upscale_delay_s": 2.0, "downscale_delay_s": 10.0,
                                    "downscale_to_zero_delay_s": 15.0, "metrics_interval_s": None}
    config = DEPLOYMENT.autoscaling_config()
    assert "metrics_interval_s" not in config and "initial_replicas" not in config
    assert config["downscale_to_zero_delay_s"] == 15.0
