"""The seed's program (the Ray blog post's Monte Carlo pi), ported unchanged to Python 3: the serial
sample() loop and the multiprocessing.Pool version with batches of 100,000. Only the command line
and the __main__ guard (which Pool needs) are added.

    python3 bench/seed_pi.py --num-samples 100000000 [--parallel]
"""
import argparse
import math
import random
import time


def sample(num_samples):
    num_inside = 0
    for _ in range(num_samples):
        x, y = random.uniform(-1, 1), random.uniform(-1, 1)
        if math.hypot(x, y) <= 1:
            num_inside += 1
    return num_inside


def approximate_pi(num_samples):
    start = time.time()
    num_inside = sample(num_samples)
    print("pi ~= {}".format((4*num_inside)/num_samples))
    print("Finished in: {:.2f}s".format(time.time()-start))


def approximate_pi_parallel(num_samples):
    from multiprocessing.pool import Pool
    pool = Pool()

    start = time.time()
    num_inside = 0
    sample_batch_size = 100000
    for result in pool.map(sample, [sample_batch_size for _ in range(num_samples//sample_batch_size)]):
        num_inside += result

    print("pi ~= {}".format((4*num_inside)/num_samples))
    print("Finished in: {:.2f}s".format(time.time()-start))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--num-samples", type=int, default=1_000_000)
    parser.add_argument("--parallel", action="store_true")
    args = parser.parse_args()
    if args.parallel:
        approximate_pi_parallel(args.num_samples)
    else:
        approximate_pi(args.num_samples)
