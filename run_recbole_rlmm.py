"""Train and evaluate a model with RecBole's pipeline, e.g.

    python run_recbole_rlmm.py --dataset movielens-mm
    python run_recbole_rlmm.py --model LightGCN --dataset amazon --epochs=2
    python run_recbole_rlmm.py -m RLMultimodalRec -d movielens-mm --fusion=sum --learning_rate=0.002

Options: --model/-m (default RLMultimodalRec; ours or any RecBole built-in),
--dataset/-d (default movielens-mm), --config_files "a.yaml b.yaml", and RecBole's
--key=value overrides (highest priority); --version, --debug as for `recbole-rlmm`.
"""

import sys

from recbole_rlmm.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], command="run"))
