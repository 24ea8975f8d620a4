"""The public API: the library the README shows."""


def test_public_api_is_the_library_and_loads_its_stages_when_used():
    import subprocess
    import sys

    code = ("import sys, segment; assert 'numba' not in sys.modules; "
            "import segment.stability as st, segment.profile as pr, segment.replicate as rp; "
            "assert segment.bootstrap_stability is st.bootstrap_stability; "
            "assert segment.profile_archetypes is pr.profile_archetypes; "
            "assert segment.Replication is rp.Replication; "
            "assert all(hasattr(segment, n) for n in segment.__all__)")
    subprocess.run([sys.executable, "-c", code], check=True)
