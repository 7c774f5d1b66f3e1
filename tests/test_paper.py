"""The published numbers: exact where the paper has a table, labelled approximate where read off charts."""

from edenkit import paper


def test_fewshot_table_is_complete_and_exact():
    assert set(paper.FEWSHOT_DICE) == {"MoCo-v2", "DenseCL", "DiRA", "Adam"}
    for method, tasks in paper.FEWSHOT_DICE.items():
        assert set(tasks) == {"heart", "clavicle"}, method
        for task, by_shot in tasks.items():
            assert tuple(by_shot) == paper.SHOTS, (method, task)
    # spot checks against the paper's table (corners and a middle cell)
    assert paper.FEWSHOT_DICE["Adam"]["heart"][3] == 84.35
    assert paper.FEWSHOT_DICE["MoCo-v2"]["clavicle"][24] == 44.47
    assert paper.FEWSHOT_DICE["DiRA"]["clavicle"][12] == 66.81


def test_adam_leads_every_fewshot_cell_in_the_paper():
    for task in ("heart", "clavicle"):
        for n in paper.SHOTS:
            best = max(paper.FEWSHOT_DICE, key=lambda m: paper.FEWSHOT_DICE[m][task][n])
            assert best == "Adam", (task, n)


def test_chart_readings_are_marked_approximate():
    for name in ("FULL_FINETUNE", "ABLATION_GRANULARITY", "ABLATION_NO_PRUNER", "DRIVE", "COMPOSITIONALITY_PEAK"):
        assert name in paper.APPROXIMATE and hasattr(paper, name)
    assert "FEWSHOT_DICE" not in paper.APPROXIMATE
    assert len(paper.FULL_FINETUNE) == 8
    assert paper.FULL_FINETUNE["SCR heart"]["Adam"] == 95.0 and paper.FULL_FINETUNE["SCR heart"]["Random"] == 91.1
    assert paper.COMPOSITIONALITY_PEAK == {"Adam": 0.84, "DiRA": 0.55, "MoCo-v2": 0.48}
