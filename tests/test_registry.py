"""The three registries (operation families, backbones, named genotypes) share one interface."""

import pytest

from darts_video.backbones.registry import BACKBONES
from darts_video.errors import UnknownNameError
from darts_video.genotype import GENOTYPES, Genotype, get_genotype
from darts_video.ops.registry import OP_FAMILIES
from darts_video.registry import Registry

REGISTRIES = {"backbone": (BACKBONES, "tiny"), "operation type": (OP_FAMILIES, "dot"), "genotype": (GENOTYPES, "non_local")}


@pytest.mark.parametrize("kind", REGISTRIES)
def test_every_registry_lists_gets_and_refuses_alike(kind):
    registry, known = REGISTRIES[kind]
    assert registry.kind == kind and known in registry and list(registry.names()) == sorted(registry.names())
    assert registry.get(known) is registry.get(known)
    with pytest.raises(UnknownNameError, match=f"unknown {kind} 'nope'; registered: {', '.join(registry.names())}"):
        registry.get("nope")
    with pytest.raises(ValueError, match=f"{kind} '{known}' is registered twice"):
        registry.register(known)(registry.get(known))


def test_a_genotype_registered_by_its_user_is_found_by_name(monkeypatch):
    import darts_video.genotype as genotype_module

    registry: Registry = Registry("genotype")
    monkeypatch.setattr(genotype_module, "GENOTYPES", registry)
    shipped = GENOTYPES.get("non_local")(None)
    registry.register("mine")(lambda space=None: shipped)
    assert get_genotype("mine") is shipped and genotype_module.named_genotypes() == ("mine",)
    assert isinstance(GENOTYPES.get("divided_space_time")(None), Genotype)
