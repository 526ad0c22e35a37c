"""The one settings module switches between the embedded default and the real stack by environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, django; from django.conf import settings; django.setup(); print(json.dumps({"
    "'engine': settings.DATABASES['default']['ENGINE'], 'broker': settings.CELERY_BROKER_URL, "
    "'eager': settings.CELERY_TASK_ALWAYS_EAGER, 'cache': settings.CACHES['default']['BACKEND'], "
    "'debug': settings.DEBUG, "
    "'server_side_binding': settings.DATABASES['default'].get('OPTIONS', {}).get('server_side_binding'), "
    "'prepare_threshold': settings.DATABASES['default'].get('OPTIONS', {}).get('prepare_threshold'), "
    "'visibility_timeout': getattr(settings, 'CELERY_BROKER_TRANSPORT_OPTIONS', {}).get('visibility_timeout')}))"
)
CLEARED = ("DATABASE_URL", "REDIS_URL", "REDIS_SOCKET_TIMEOUT", "REDIS_SOCKET_CONNECT_TIMEOUT",
           "REDIS_RETRY_SECONDS", "DJANGO_DEBUG", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS",
           "CELERY_TASK_ALWAYS_EAGER", "DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SUPPRESSION_HASH_KEY")


def run_settings(extra_env: dict[str, str], code: str = PROBE) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update({"DJANGO_SETTINGS_MODULE": "crm_console.settings", **extra_env})
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


def test_embedded_demo_gives_sqlite_and_eager_celery():
    result = run_settings({"DJANGO_DEBUG": "true"})  # what `make run` and `make test` set
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["engine"] == "django.db.backends.sqlite3"
    assert config["eager"] is True
    assert config["broker"] == "memory://"
    assert config["debug"] is True


def test_debug_is_off_unless_asked_for():
    result = run_settings({"DJANGO_SECRET_KEY": "k" * 50, "DJANGO_ALLOWED_HOSTS": "example.com",
                           "DJANGO_SUPPRESSION_HASH_KEY": "h" * 50})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["debug"] is False


def test_no_environment_at_all_refuses_to_start_without_a_secret_key():
    result = run_settings({})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_database_and_redis_urls_give_postgresql_and_redis():
    result = run_settings({
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/crm_console",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    })
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["engine"] == "django.db.backends.postgresql"
    assert config["broker"] == "redis://127.0.0.1:6379/0"
    assert config["eager"] is False
    assert config["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert config["server_side_binding"] is True  # parameters bound by the server
    assert config["prepare_threshold"] == 2  # the decision loop's statements planned once
    assert config["visibility_timeout"] == 12 * 3600  # outlasts a training run: never run twice


def test_server_side_binding_can_be_switched_off():
    result = run_settings({"DJANGO_DEBUG": "true",
                           "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/crm_console",
                           "DJANGO_DB_SERVER_SIDE_BINDING": "false"})
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["server_side_binding"] is False
    assert config["prepare_threshold"] is None  # nothing prepared behind a transaction pooler


def test_production_without_secret_key_refuses_to_start():
    result = run_settings({"DJANGO_DEBUG": "false"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_without_suppression_hash_key_refuses_to_start():
    result = run_settings({"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "k" * 50})
    assert result.returncode != 0
    assert "DJANGO_SUPPRESSION_HASH_KEY" in result.stderr


def test_check_deploy_is_clean_in_production_settings():
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update({
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "k" * 20 + "Zq8#x!2Lm@9vR$wT4pN^7sB&1dF*6hJ(0gK)",
        "DJANGO_ALLOWED_HOSTS": "console.example.com",
        "DJANGO_SUPPRESSION_HASH_KEY": "s" * 20 + "Hq2#v!8Nm@4wR$tY6pL",
    })
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout + result.stderr


def test_redis_timeouts_are_short_and_read_from_the_environment():
    code = ("import json, django; from django.conf import settings; django.setup(); "
            "print(json.dumps({'cache': settings.CACHES['default'].get('OPTIONS'), "
            "'broker': settings.CELERY_BROKER_TRANSPORT_OPTIONS.get('socket_connect_timeout'), "
            "'retry': settings.REDIS_RETRY_SECONDS}))")
    result = run_settings({"DJANGO_DEBUG": "true", "REDIS_URL": "redis://127.0.0.1:6379/0"}, code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "cache": {"socket_connect_timeout": 0.5, "socket_timeout": 1.0}, "broker": 0.5,
        "retry": 2.0}
    result = run_settings({"DJANGO_DEBUG": "true", "REDIS_URL": "redis://127.0.0.1:6379/0",
                           "REDIS_SOCKET_TIMEOUT": "0.25", "REDIS_SOCKET_CONNECT_TIMEOUT": "0.2"},
                          code)
    assert json.loads(result.stdout)["cache"] == {"socket_connect_timeout": 0.2,
                                                  "socket_timeout": 0.25}


def test_production_collectstatic_writes_compressed_hashed_files(tmp_path):
    # whitenoise serves the .gz (or .br) copy to browsers that accept it: 4.8 MB of JS is ~1.4 MB
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update({"DJANGO_SETTINGS_MODULE": "crm_console.settings", "DJANGO_DEBUG": "false",
                "DJANGO_SECRET_KEY": "k" * 50, "DJANGO_SUPPRESSION_HASH_KEY": "s" * 40,
                "DJANGO_STATIC_ROOT": str(tmp_path)})
    result = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "staticfiles.json").exists()  # hashed names (the manifest)
    assert list(tmp_path.rglob("console*.js.gz")), sorted(p.name for p in tmp_path.rglob("*"))[:40]
