"""``dissect.probe: <folder>`` pointed at a Broden tree: the JPEGs its ``index.csv`` lists, never the segmentation
PNGs beside them, in CLIP-Dissect's order, with the ``broden`` set's ids; a broken tree refused in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from xai.dissect import probes
from xai.dissect.probes import ProbeSetError, broden_tree, folder_images, probe_ids, probe_images, stratified_limit
from xai.errors import UserError

HEADER = "image,split,ih,iw,sh,sw,color,object,part,material,scene,texture"
"""broden1_224/index.csv's header (NetDissect's format; Broden's README gives the same column order)."""

# Per source: image stems and the segmentation PNGs Broden writes beside each JPEG (colour for every image; object
# and part for ADE20K and Pascal, material for OpenSurfaces; DTD is labelled per image: texture, no object mask).
SOURCES = {
    "ade20k": (["ADE_train_00000001", "ADE_val_00000002"], ["color", "object", "part_1", "part_2"]),
    "dtd": (["banded_0002", "zigzagged_0133"], ["color"]),
    "opensurfaces": (["100963", "25"], ["color", "material"]),
    "pascal": (["2008_000002", "2010_005993"], ["color", "object", "part_1"]),
}


def _row(source: str, stem: str, masks: list[str]) -> str:
    cell = {mask.split("_")[0]: f"{source}/{stem}_{mask}.png" for mask in masks}
    parts = ";".join(f"{source}/{stem}_{mask}.png" for mask in masks if mask.startswith("part"))
    texture = "314;194" if source == "dtd" else ""
    scene = "7" if source == "ade20k" else ""
    cells = [cell.get("color", ""), cell.get("object", ""), parts, cell.get("material", ""), scene, texture]
    return ",".join([f"{source}/{stem}.jpg", "train", "224", "224", "112", "112", *cells])


def mock_broden(root: Path) -> list[str]:
    """broden1_224 as its zip extracts: images/<source>/<stem>.jpg plus mask PNGs, index.csv, label and category
    tables. Returns the image column (paths below images/) in index order, which is not sorted."""
    rows, listed = [HEADER], []
    for source, (stems, masks) in reversed(list(SOURCES.items())):  # the real index is not in path order
        folder = root / "images" / source
        folder.mkdir(parents=True)
        for stem in stems:
            Image.new("RGB", (224, 224), (30, 60, 90)).save(folder / f"{stem}.jpg")
            for mask in masks:
                Image.new("RGB", (112, 112), (5, 0, 0)).save(folder / f"{stem}_{mask}.png")
            rows.append(_row(source, stem, masks))
            listed.append(f"{source}/{stem}.jpg")
    (root / "index.csv").write_text("\n".join(rows) + "\n")
    (root / "label.csv").write_text("number,name,category,frequency,coverage,syns\n1,red-c,color(289),289,9.14,\n")
    (root / "category.csv").write_text("name,first,last,count,frequency\ncolor,1,11,11,63305\n")
    (root / "c_scene.csv").write_text("code,number,name,frequency,coverage\n1,7,airfield-s,10,1\n")
    return listed


def clip_dissect_order(root: Path) -> list[str]:
    """CLIP-Dissect's probe: dlbroden.sh deletes every PNG, then torchvision's ImageFolder loads images/."""
    from torchvision.datasets import ImageFolder

    stripped = root.parent / "clip_dissect_copy"
    shutil.copytree(root / "images", stripped)
    for png in stripped.rglob("*.png"):
        png.unlink()
    return [Path(path).relative_to(stripped).as_posix() for path, _ in ImageFolder(str(stripped)).samples]


def test_mock_tree_holds_the_masks_a_plain_listing_would_read(tmp_path: Path) -> None:
    mock_broden(tmp_path / "broden1_224")
    files = [p for p in (tmp_path / "broden1_224" / "images").rglob("*") if p.is_file()]
    assert len(files) == 28 and sum(p.suffix == ".jpg" for p in files) == 8  # 20 masks a plain listing would take


@pytest.mark.parametrize("pointed_at", ["broden1_224", "broden1_224/images"])
def test_folder_probe_on_broden_is_the_index_jpegs_in_clip_dissect_order(tmp_path: Path, pointed_at: str) -> None:
    root = tmp_path / "broden1_224"
    listed = mock_broden(root)
    folder = tmp_path / pointed_at
    assert broden_tree(folder) == root
    paths = folder_images(folder)
    relative = [p.relative_to(root / "images").as_posix() for p in paths]
    assert relative == sorted(listed) and len(paths) == 8  # not the 28 files the folders hold
    assert relative == clip_dissect_order(root)
    # ids and id root are the named broden set's
    got_paths, id_root = probe_images(str(folder))
    assert got_paths == paths and id_root == root / "images"
    named = probes.broden_index_images(root, expected=len(listed))
    assert probe_ids(got_paths, id_root) == probe_ids(named, root / "images")
    assert probe_ids(got_paths, id_root)[0] == "ade20k/ADE_train_00000001"
    # strata are the four source datasets, as for the named set
    chosen = stratified_limit(got_paths, 4, root=id_root)
    assert sorted(p.parent.name for p in chosen) == ["ade20k", "dtd", "opensurfaces", "pascal"]


def test_broken_broden_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    root = tmp_path / "broden1_224"
    listed = mock_broden(root)
    (root / "images" / listed[2]).unlink()
    with pytest.raises(ProbeSetError) as raised:
        folder_images(root)
    message = str(raised.value)
    assert isinstance(raised.value, UserError) and "\n" not in message
    assert "index.csv lists 8" in message and f"first missing: images/{listed[2]}" in message
    assert "dissect.probe" in message  # the fix names the key

    (root / "index.csv").write_text(HEADER + "\n")  # a header and no rows
    with pytest.raises(ProbeSetError, match="lists 0"):
        folder_images(root / "images")


def test_other_index_csv_leaves_a_plain_folder_alone(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    (folder / "cats").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(folder / "cats" / "a.png")
    (folder / "index.csv").write_text("file,label\ncats/a.png,cat\n")  # the user's own table, not NetDissect's
    assert broden_tree(folder) is None
    assert folder_images(folder) == [folder / "cats" / "a.png"]
    assert probe_images(str(folder))[1] == folder
