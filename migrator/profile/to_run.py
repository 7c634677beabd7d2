"""Turn a validated profile into what a run needs: endpoints, copy options, state and lock paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from migrator.core.dirs import state_dir
from migrator.endpoints.credentials import PasswordSource, TokenSource
from migrator.endpoints.endpoint import Endpoint, oauth_client
from migrator.endpoints.kinds import KINDS
from migrator.pipeline.foldermap import FolderRules
from migrator.pipeline.options import DEFAULT_CONNECTIONS, CopyOptions
from migrator.profile.schema import EndpointSpec, Profile


@dataclass(frozen=True)
class RunPlan:
    """A profile ready to run: the state file is also the key of the profile's lock."""

    name: str
    source: Endpoint
    targets: tuple[Endpoint, ...]
    options: CopyOptions
    state_path: Path
    quiet: bool

    @property
    def lock_path(self) -> Path:
        """Return the lock file guarding this profile's state file."""
        return self.state_path.with_name(self.state_path.name + ".lock")


def plan_run(profile: Profile, *, dry_run: bool = False, quiet: bool = False) -> RunPlan:
    """Return the run ``profile`` describes; ``dry_run`` and ``quiet`` add to the profile's options."""
    options = CopyOptions(
        rules=FolderRules(profile.include, profile.exclude, profile.renames,
                          origin=f"folders: include in {profile.path}"),
        message_filter=profile.message_filter,
        dry_run=dry_run or profile.dry_run,
        delete_after=profile.delete_after,
        keep_days=profile.keep_days,
        connections=profile.connections or DEFAULT_CONNECTIONS,
        limits=profile.limits,
    )
    return RunPlan(
        name=profile.name,
        source=endpoint_of(profile.source),
        targets=tuple(endpoint_of(t) for t in profile.targets),
        options=options,
        state_path=profile.state or default_profile_state(profile.name),
        quiet=quiet or profile.quiet,
    )


def default_profile_state(name: str) -> Path:
    """Return the state file of the profile called ``name`` when it names none."""
    return state_dir() / f"{name}.sqlite"


def endpoint_of(spec: EndpointSpec) -> Endpoint:
    """Return the Endpoint an endpoint section describes, with its provider and its limits."""
    endpoint = _written(spec)
    return endpoint._replace(provider=spec.provider, limits=spec.limits) if endpoint.is_server else endpoint


def _written(spec: EndpointSpec) -> Endpoint:
    if spec.path is not None:
        return Endpoint(kind=spec.type, path=spec.path, hard_links=spec.links == "hard")
    return Endpoint(
        kind=spec.type,
        host=spec.host,
        port=spec.port or KINDS[spec.type].default_port(spec.tls),
        user=spec.user,
        tls=spec.tls,
        ca_file=spec.ca_file,
        password=PasswordSource(
            env=spec.password_env, file=spec.password_file, command=spec.password_command, literal=spec.password,
        ),
        admin_user=spec.admin_user,
        admin_password=PasswordSource(
            env=spec.admin_password_env, file=spec.admin_password_file, command=spec.admin_password_command,
            literal=spec.admin_password,
        ),
        auth=spec.auth,
        gmail=spec.gmail,
        all_mail=spec.all_mail,
        token=TokenSource(
            env=spec.oauth.get("token_env"), file=spec.oauth.get("token_file"), command=spec.oauth.get("token_command"),
        ),
        oauth=oauth_client(spec.oauth, f"{spec.user}@{spec.host}"),
    )

