"""Tables of the file catalog: directories, files, replicas.

Directories are stored by their full path (unique), files by (directory, name)
(unique), a file's GUID is unique, replicas by (file, storage element) (unique): the database itself
refuses a second entry for the same name even when two writers race.
Lengths fit an InnoDB index (MySQL) as well as SQLite and PostgreSQL.
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

#: Longest directory path and longest file name the catalog stores.
MAX_DIR_PATH = 760
MAX_NAME = 255
MAX_IDENTITY = 128
MAX_SE = 128

metadata = MetaData()

directories = Table(
    "FC_Directories",
    metadata,
    Column("DirID", Integer, primary_key=True, autoincrement=True),
    Column("ParentID", Integer, ForeignKey("FC_Directories.DirID", ondelete="RESTRICT"), nullable=True, index=True),
    Column("Path", String(MAX_DIR_PATH), nullable=False),
    Column("Owner", String(MAX_IDENTITY), nullable=False),
    Column("OwnerGroup", String(MAX_IDENTITY), nullable=False),
    Column("Mode", Integer, nullable=False),
    Column("CreationDate", DateTime, nullable=False),
    Column("ModificationDate", DateTime, nullable=False),
    UniqueConstraint("Path", name="uq_fc_directories_path"),
)

files = Table(
    "FC_Files",
    metadata,
    Column("FileID", Integer, primary_key=True, autoincrement=True),
    Column("DirID", Integer, ForeignKey("FC_Directories.DirID", ondelete="RESTRICT"), nullable=False),
    Column("FileName", String(MAX_NAME), nullable=False),
    Column("Size", BigInteger, nullable=False),
    Column("Checksum", String(64), nullable=False),
    Column("ChecksumType", String(32), nullable=False),
    Column("GUID", String(64), nullable=False),
    Column("Owner", String(MAX_IDENTITY), nullable=False),
    Column("OwnerGroup", String(MAX_IDENTITY), nullable=False),
    Column("Mode", Integer, nullable=False),
    Column("CreationDate", DateTime, nullable=False),
    Column("ModificationDate", DateTime, nullable=False),
    Column("Status", String(32), nullable=False),
    UniqueConstraint("DirID", "FileName", name="uq_fc_files_dir_name"),
    Index("ix_fc_files_guid", "GUID", unique=True),
)

replicas = Table(
    "FC_Replicas",
    metadata,
    Column("RepID", Integer, primary_key=True, autoincrement=True),
    Column("FileID", Integer, ForeignKey("FC_Files.FileID", ondelete="CASCADE"), nullable=False),
    Column("SE", String(MAX_SE), nullable=False),
    Column("PFN", Text, nullable=False),
    Column("Status", String(32), nullable=False),
    UniqueConstraint("FileID", "SE", name="uq_fc_replicas_file_se"),
    Index("ix_fc_replicas_se", "SE"),
)
