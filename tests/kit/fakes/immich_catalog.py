"""The fake Immich's albums, people and faces, tags and memories: seeding and changing them.

In memory, no I/O. These tables point at assets; changing them moves the album's own
timestamp, never the asset's `updatedAt` — exactly why a bridge needs its periodic full walk.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from tests.kit.fakes.images import scaled_size
from tests.kit.fakes.immich_model import Library, need
from tests.kit.fakes.immich_rows import Album, Face, Memory, Person, Tag, new_id


class Catalog(Library):
    """The library with its albums, people, tags and memories. Methods return new ids."""

    def add_album(self, name: str, assets: Iterable[str] = (), description: str = "") -> str:
        with self.lock:
            now = self.now
            album = Album(new_id(), name, self.owner.id, now, now, description=description)
            self.albums[album.id] = album
            self.album_add(album.id, *assets)
            return album.id

    def album_add(self, album_id: str, *asset_ids: str) -> None:
        with self.lock:
            album = need(self.albums, album_id, "album")
            for asset_id in asset_ids:
                need(self.assets, asset_id, "asset")
                album.asset_ids[asset_id] = None
            album.updated = self.now
            self.version += 1

    def album_remove(self, album_id: str, *asset_ids: str) -> None:
        with self.lock:
            album = need(self.albums, album_id, "album")
            for asset_id in asset_ids:
                album.asset_ids.pop(asset_id, None)
            album.updated = self.now
            self.version += 1

    def add_person(self, name: str, *, hidden: bool = False, favorite: bool = False) -> str:
        with self.lock:
            person = Person(new_id(), name, self.now, hidden=hidden, favorite=favorite)
            self.people[person.id] = person
            self.version += 1
            return person.id

    def add_face(
        self,
        asset_id: str,
        person_id: str | None = None,
        box: tuple[int, int, int, int] | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> str:
        """A detected face; `box` is (x1, y1, x2, y2) in `image_size` pixels, by default the
        asset's preview size, as Immich detects faces on the preview."""
        with self.lock:
            asset = need(self.assets, asset_id, "asset")
            if person_id is not None:
                need(self.people, person_id, "person")
            w, h = image_size or scaled_size(asset.width, asset.height, "preview")
            face_box = box or (w * 2 // 5, h // 4, w * 3 // 5, h // 2)
            face = Face(new_id(), asset_id, person_id, face_box, (w, h))
            self.faces[face.id] = face
            self.version += 1
            return face.id

    def add_tag(self, name: str, parent: str | None = None, color: str | None = None) -> str:
        """A tag, under `parent` for a hierarchy (`parent/name`)."""
        with self.lock:
            if parent is not None:
                need(self.tags, parent, "tag")
            tag = Tag(new_id(), name, parent, self.now, color)
            self.tags[tag.id] = tag
            self.version += 1
            return tag.id

    def tag(self, asset_id: str, *tag_ids: str) -> None:
        with self.lock:
            for tag_id in tag_ids:
                need(self.tags, tag_id, "tag")
            need(self.assets, asset_id, "asset").tag_ids.update(tag_ids)
            self.version += 1

    def untag(self, asset_id: str, *tag_ids: str) -> None:
        with self.lock:
            need(self.assets, asset_id, "asset").tag_ids.difference_update(tag_ids)
            self.version += 1

    def add_memory(self, day: date, assets: Iterable[str], year: int | None = None) -> str:
        """An on-this-day memory shown on `day` (a calendar date) with photos from `year`
        (default: the year the first photo was taken)."""
        with self.lock:
            ids = list(assets)
            for asset_id in ids:
                need(self.assets, asset_id, "asset")
            if year is None:
                year = self.assets[ids[0]].taken.year if ids else day.year - 1
            memory = Memory(new_id(), day, year, ids, self.now)
            self.memories[memory.id] = memory
            self.version += 1
            return memory.id
