"""The extension's lifecycle around ``build_services``: stopping an extension that never started
does nothing, and a start that fails part way closes what it had opened, so the next start on
the same database works."""

from __future__ import annotations

from pathlib import Path

import pytest
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

from coderchat_ext.app import CoderChatApp
from coderchat_ext.chatd.service import Actor
from coderchat_ext.wiring import Services, ServicesConfig, build_services


async def test_stopping_an_extension_that_never_started_does_nothing() -> None:
    app = CoderChatApp()
    await app.stop_extension()
    assert app.services is None


def services_for(tmp_path: Path, config: ServicesConfig) -> Services:
    return build_services(
        config,
        kernel_manager=AsyncMappingKernelManager(),
        contents=AsyncLargeFileManager(root_dir=str(tmp_path)),
    )


async def test_a_start_that_fails_part_way_closes_what_it_opened(tmp_path: Path) -> None:
    db_path = str(tmp_path / "coderchat.db")
    broken = services_for(
        tmp_path, ServicesConfig(db_path=db_path, model_configs=[{"model": "no-provider"}])
    )
    with pytest.raises(KeyError, match="provider"):
        await broken.start()
    assert not broken.db.is_open

    config = ServicesConfig(
        db_path=db_path,
        scripted_model={},
        model_configs=[{"provider": "scripted", "model": "s"}],
        seed_default_models=False,
    )
    services = services_for(tmp_path, config)
    await services.start()
    try:
        configs = await services.settings.list_model_configs(Actor("admin", is_admin=True))
        assert [(c["provider"], c["model"]) for c in configs] == [("scripted", "s")]
    finally:
        await services.stop()
    assert not services.db.is_open
