"""Tier 1: how a rank finds its role and command line (mpi4py-free parts)."""
from launcher.mpi.rank import mpi_world, substitute
from launcher.plan.model import MpiJob


def test_mpi_world_from_open_mpi_mpich_or_nothing():
    assert mpi_world({"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2"}) == (1, 2)
    assert mpi_world({"PMI_RANK": "0", "PMI_SIZE": "4"}) == (0, 4)
    assert mpi_world({}) is None


def test_rank_argv_placeholders_take_gathered_addresses():
    hosts = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert substitute("{host:1}:50052,{host:2}:50053", hosts, "10.0.0.1") == "10.0.0.2:50052,10.0.0.3:50053"
    assert substitute("{host}", hosts, "10.0.0.2") == "10.0.0.2"


def test_mpi_job_line_is_composed_from_its_parts():
    job = MpiJob("m@1", 2, ("mpirun", "-np", "2"), (("ASCEND_RT_VISIBLE_DEVICES", "0,1"),), ("--tag-output",),
                 ("llama-mpi-server", "--config", "f.yaml"))
    assert job.argv == ("mpirun", "-np", "2", "-x", "ASCEND_RT_VISIBLE_DEVICES=0,1", "-x", "LAUNCHER_JOB",
                        "--tag-output", "llama-mpi-server", "--config", "f.yaml")
