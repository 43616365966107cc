import pytest

from robustbench_aux.errors import UserError
from robustbench_aux.registry import Registry


def make():
    r = Registry("widget")

    @r.register("resnet18", tags=("resnet", "cifar"))
    def resnet18():
        return "r18"

    @r.register(tags=("resnet",))
    def resnet50():
        return "r50"

    r.add("wrn_40_2", object(), tags=("wrn",))
    return r


def test_get_list_and_tags():
    r = make()
    assert r.get("resnet18")() == "r18"
    assert r.names() == ["resnet18", "resnet50", "wrn_40_2"]
    assert r.names("resnet*") == ["resnet18", "resnet50"]
    assert r.names(tag="cifar") == ["resnet18"]
    assert r.tags("resnet50") == {"resnet"}
    assert "wrn_40_2" in r and len(r) == 3


def test_unknown_name_suggests():
    with pytest.raises(UserError, match=r"unknown widget 'resnet81'; did you mean 'resnet18'"):
        make().get("resnet81")


def test_double_registration_is_refused():
    r = make()
    with pytest.raises(ValueError, match="registered twice"):
        r.add("resnet18", 1)
