"""Tables of the file catalog: directories, files, replicas, and the schema version.

Directories are stored by their full path (unique), files by (directory, name)
(unique), a file's GUID is unique, replicas by (file, storage element) (unique): the database itself
refuses a second entry for the same name even when two writers race.

Every catalog call reaches its rows through an index, so its cost does not
grow with the number of files (``tests/DataManagementSystem/test_filecatalog_indexes.py``
checks the plans on each backend):

* a path: ``uq_fc_directories_path``; a file: ``uq_fc_files_dir_name`` (DirID, FileName);
* a listing, one page at a time: ``ix_fc_directories_parent_path`` (ParentID, Path) and
  ``uq_fc_files_dir_name`` (keyset pagination in name order);
* the replicas of a file: ``uq_fc_replicas_file_se`` (FileID, SE); a GUID: ``ix_fc_files_guid`` (unique).

Lengths fit InnoDB's 3072-byte index key with 4-byte utf8mb4 characters (760 x 4
for the longest directory path) as well as SQLite and PostgreSQL, so the full
path is its own unique key and no hash column is needed. On MariaDB/MySQL text
columns compare byte-wise and without trailing-space padding (LFNs are
case-sensitive: ``/a/B`` and ``/a/b`` are two files), tables are InnoDB utf8mb4.

``SCHEMA_VERSION`` is the layout this code reads and writes; the table
``FC_SchemaVersion`` holds the layout of the database (see ``FileCatalogDB``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator

#: Layout of the tables below; raise it (and say how to migrate in the README) when they change.
SCHEMA_VERSION = 1

#: Longest directory path and longest file name the catalog stores.
MAX_DIR_PATH = 760
MAX_NAME = 255
MAX_IDENTITY = 128
MAX_SE = 128

#: Options of every table on MariaDB/MySQL.
MYSQL_TABLE = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


class Name(TypeDecorator):
    """A VARCHAR compared byte for byte on every backend (binary, no-pad collation on MariaDB/MySQL)."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name in ("mysql", "mariadb"):
            collation = "utf8mb4_nopad_bin" if getattr(dialect, "is_mariadb", False) else "utf8mb4_0900_bin"
            return dialect.type_descriptor(mysql.VARCHAR(self.impl.length, charset="utf8mb4", collation=collation))
        return dialect.type_descriptor(String(self.impl.length))


metadata = MetaData()

schemaVersion = Table(
    "FC_SchemaVersion",
    metadata,
    Column("ID", Integer, primary_key=True, autoincrement=False),  # always 1: one row
    Column("Version", Integer, nullable=False),
    **MYSQL_TABLE,
)

directories = Table(
    "FC_Directories",
    metadata,
    Column("DirID", Integer, primary_key=True, autoincrement=True),
    Column("ParentID", Integer, ForeignKey("FC_Directories.DirID", ondelete="RESTRICT"), nullable=True),
    Column("Path", Name(MAX_DIR_PATH), nullable=False),
    Column("Owner", Name(MAX_IDENTITY), nullable=False),
    Column("OwnerGroup", Name(MAX_IDENTITY), nullable=False),
    Column("Mode", Integer, nullable=False),
    Column("CreationDate", DateTime, nullable=False),
    Column("ModificationDate", DateTime, nullable=False),
    UniqueConstraint("Path", name="uq_fc_directories_path"),
    Index("ix_fc_directories_parent_path", "ParentID", "Path"),
    **MYSQL_TABLE,
)

files = Table(
    "FC_Files",
    metadata,
    Column("FileID", Integer, primary_key=True, autoincrement=True),
    Column("DirID", Integer, ForeignKey("FC_Directories.DirID", ondelete="RESTRICT"), nullable=False),
    Column("FileName", Name(MAX_NAME), nullable=False),
    Column("Size", BigInteger, nullable=False),
    Column("Checksum", Name(64), nullable=False),
    Column("ChecksumType", Name(32), nullable=False),
    Column("GUID", Name(64), nullable=False),
    Column("Owner", Name(MAX_IDENTITY), nullable=False),
    Column("OwnerGroup", Name(MAX_IDENTITY), nullable=False),
    Column("Mode", Integer, nullable=False),
    Column("CreationDate", DateTime, nullable=False),
    Column("ModificationDate", DateTime, nullable=False),
    Column("Status", Name(32), nullable=False),
    UniqueConstraint("DirID", "FileName", name="uq_fc_files_dir_name"),
    Index("ix_fc_files_guid", "GUID", unique=True),
    **MYSQL_TABLE,
)

replicas = Table(
    "FC_Replicas",
    metadata,
    Column("RepID", Integer, primary_key=True, autoincrement=True),
    Column("FileID", Integer, ForeignKey("FC_Files.FileID", ondelete="CASCADE"), nullable=False),
    Column("SE", Name(MAX_SE), nullable=False),
    Column("PFN", Text, nullable=False),
    Column("Status", Name(32), nullable=False),
    UniqueConstraint("FileID", "SE", name="uq_fc_replicas_file_se"),
    Index("ix_fc_replicas_se", "SE"),
    **MYSQL_TABLE,
)
