"""Write the small samples of public data that ``manage.py load_demo`` builds the demo school from.

Reads the research datasets under ``../shared/data`` (see their ``SOURCE.md``) and writes, into
``edu_dl/demo_data/``:

- ``assist2009_sample.csv.gz``: 240 real ASSISTments 2009-10 students (AKT fold files), each with
  at least 20 answers and at most their first 150, with real skill names. The files carry no
  times, so timestamps are synthesised (seeded) in each student's order over ~60 days.
- ``asap_sas_set1.tsv.gz``: 400 real answers to ASAP-SAS question 1 with both raters' scores.
- ``asap_sas_set1_question.json``: our paraphrase of question 1 and our reference answer.
- ``resources.csv``: a study catalogue written by us, two resources per skill of the sample.

Everything random comes from one seeded generator, so running it again writes the same bytes
(gzip without a file name or time stamp). Run from the repository root::

    .venv/bin/python scripts/make_demo_sample.py [--data-dir ../shared/data] [--seed 2009]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = Path("/work/shared/data")
OUTPUT_DIR = REPOSITORY_ROOT / "edu_dl" / "demo_data"

STUDENT_COUNT = 240
MIN_ANSWERS = 20
MAX_ANSWERS = 150
ASAP_SET = 1
ASAP_RESPONSES = 400
# The synthetic timeline ends here (a fixed date keeps the output reproducible; the loader moves
# the whole timeline by whole days so that it ends on the day the demo is loaded).
TIMELINE_END = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
TIMELINE_DAYS = 60

# Our paraphrase of ASAP-SAS question 1 (the prompt itself is not part of the public data).
ASAP_QUESTION = {
    "title": "Acid rain experiment: what would you need to replicate it?",
    "prompt": (
        "A group of students investigated the effect of acid rain on building materials. They "
        "placed samples of marble, limestone, wood and plastic in separate containers of vinegar, "
        "left them for a day, then rinsed, dried and weighed each sample again and recorded the "
        "change in mass.\n\n"
        "After reading the group's procedure, describe what additional information you would "
        "need in order to replicate the experiment. Give at least three pieces of information."
    ),
    "reference_answer": (
        "To replicate the experiment I would need to know how much vinegar was put in each "
        "container, what type and concentration of vinegar was used, the size and surface area "
        "of each sample (and its starting mass), the size and type of the containers, how long "
        "and at what temperature the samples stayed in the vinegar, and how the samples were "
        "rinsed and dried before weighing."
    ),
    "min_score": 0,
    "max_score": 3,
    "written_by": "edu_dl authors (not part of ASAP-SAS)",
}

# One line per ASSISTments skill: the key idea a learner needs, written by us from the name.
SKILL_NOTES = {
    "Box and Whisker": "A box plot shows the minimum, quartiles, median and maximum of a data set.",
    "Circle Graph": "Each sector of a circle graph is a share of 360 degrees, i.e. a percent.",
    "Histogram as Table or Graph": "A histogram counts how many values fall in each interval.",
    "Number Line": "Numbers grow to the right on a number line; equal steps mean equal gaps.",
    "Scatter Plot": "A scatter plot shows pairs of values; look for a trend and outliers.",
    "Stem and Leaf Plot": "The stem holds the leading digits, each leaf one final digit.",
    "Table": "Read a table by its row and column headings before reading any cell.",
    "Venn Diagram": "Overlapping circles show what two or more sets have in common.",
    "Mean": "The mean is the sum of the values divided by how many values there are.",
    "Median": "The median is the middle value once the data are put in order.",
    "Mode": "The mode is the value that occurs most often.",
    "Range": "The range is the largest value minus the smallest value.",
    "Counting Methods": "Multiply the number of choices at each step to count all outcomes.",
    "Probability of Two Distinct Events": "For independent events multiply the probabilities.",
    "Probability of a Single Event": "Probability is favourable outcomes over possible outcomes.",
    "Interior Angles Figures with More than 3 Sides": "A polygon with n sides has interior "
    "angles that add up to (n - 2) x 180 degrees.",
    "Interior Angles Triangle": "The three angles of any triangle add up to 180 degrees.",
    "Congruence": "Congruent figures have the same shape and size: matching sides and angles.",
    "Complementary and Supplementary Angles": "Complementary angles sum to 90 degrees, "
    "supplementary angles to 180 degrees.",
    "Angles on Parallel Lines Cut by a Transversal": "A transversal makes equal corresponding "
    "and alternate angles on parallel lines.",
    "Pythagorean Theorem": "In a right triangle a^2 + b^2 = c^2, where c is the hypotenuse.",
    "Nets of 3D Figures": "A net is the flat pattern that folds into a solid figure.",
    "Unit Conversion Within a System": "Multiply or divide by the conversion factor, e.g. "
    "12 inches in a foot, 100 centimetres in a metre.",
    "Effect of Changing Dimensions of a Shape Prportionally": "Scaling lengths by k scales "
    "perimeter by k, area by k^2 and volume by k^3.",
    "Area Circle": "The area of a circle is pi times the radius squared.",
    "Circumference": "The circumference of a circle is pi times its diameter.",
    "Perimeter of a Polygon": "The perimeter is the sum of the lengths of all sides.",
    "Reading a Ruler or Scale": "Count the small divisions between labelled marks first.",
    "Calculations with Similar Figures": "Corresponding sides of similar figures are in "
    "the same ratio.",
    "Conversion of Fraction Decimals Percents": "A fraction, a decimal and a percent can name "
    "the same number: 1/4 = 0.25 = 25%.",
    "Equivalent Fractions": "Multiply or divide top and bottom by the same number.",
    "Ordering Positive Decimals": "Compare decimals place by place from the left.",
    "Ordering Fractions": "Give fractions a common denominator, then compare numerators.",
    "Ordering Integers": "Negative numbers with larger absolute values are smaller.",
    "Ordering Real Numbers": "Write every number as a decimal to compare them.",
    "Rounding": "Look at the digit to the right of the rounding place: 5 or more rounds up.",
    "Addition Whole Numbers": "Line up place values and carry when a column passes 9.",
    "Division Fractions": "To divide by a fraction, multiply by its reciprocal.",
    "Estimation": "Round to friendly numbers first to check whether an answer is sensible.",
    "Fraction Of": "A fraction of a number is that fraction times the number.",
    "Least Common Multiple": "The least common multiple is the smallest number both divide.",
    "Multiplication Fractions": "Multiply numerators together and denominators together.",
    "Multiplication Whole Numbers": "Multiply by each place value and add the partial products.",
    "Percent Of": "To find p% of a number, multiply the number by p/100.",
    "Subtraction Whole Numbers": "Line up place values and borrow when a digit is too small.",
    "Square Root": "A square root of n is a number that multiplied by itself gives n.",
    "Finding Percents": "Part divided by whole, times 100, gives the percent.",
    "Proportion": "In a proportion two ratios are equal; cross-multiply to solve.",
    "Scale Factor": "The scale factor is new length divided by original length.",
    "Unit Rate": "A unit rate is an amount per one unit, e.g. dollars per pound.",
    "Scientific Notation": "Write a number as a x 10^n with 1 <= a < 10.",
    "Divisibility Rules": "Digit tests tell divisibility: by 3 if the digit sum is.",
    "Prime Number": "A prime has exactly two factors: 1 and itself.",
    "Absolute Value": "Absolute value is the distance from zero, never negative.",
    "Exponents": "An exponent says how many times the base is multiplied by itself.",
    "Pattern Finding": "Find the rule that takes each term to the next one.",
    "D.4.8-understanding-concept-of-probabilities": "Probability runs from 0 (impossible) "
    "to 1 (certain).",
    "Algebraic Simplification": "Combine like terms and apply the distributive property.",
    "Algebraic Solving": "Do the same operation to both sides until the variable is alone.",
    "Choose an Equation from Given Information": "Name the unknown, then translate each "
    "phrase into symbols.",
    "Intercept": "The y-intercept is where a line crosses the y-axis (x = 0).",
    "Linear Equations": "A linear equation y = mx + b has a constant rate of change m.",
    "Percent Discount": "Sale price = original price x (1 - discount/100).",
    "Percents": "Percent means per hundred.",
    "Rate": "A rate compares two quantities with different units, such as miles per hour.",
    "Slope": "Slope is rise over run: the change in y divided by the change in x.",
    "Multiplication and Division Positive Decimals": "Count decimal places to place the point "
    "in the answer.",
    "Addition and Subtraction Integers": "Subtracting a number is adding its opposite.",
    "Addition and Subtraction Positive Decimals": "Line up the decimal points before adding.",
    "Multiplication and Division Integers": "Same signs give a positive result, different "
    "signs a negative one.",
    "Addition and Subtraction Fractions": "Use a common denominator, then add the numerators.",
    "Reflection": "A reflection flips a figure over a line; each point keeps its distance.",
    "Rotations": "A rotation turns a figure about a fixed point by an angle.",
    "Translations": "A translation slides every point the same distance and direction.",
    "Area Irregular Figure": "Split the figure into rectangles and triangles and add the areas.",
    "Area Parallelogram": "Area of a parallelogram = base x height.",
    "Area Rectangle": "Area of a rectangle = length x width.",
    "Area Trapezoid": "Area of a trapezoid = half the sum of the parallel sides x height.",
    "Area Triangle": "Area of a triangle = half of base x height.",
    "Surface Area Cylinder": "Surface area = two circles plus the curved rectangle: "
    "2 pi r^2 + 2 pi r h.",
    "Surface Area Rectangular Prism": "Add the areas of the six rectangular faces.",
    "Volume Cylinder": "Volume of a cylinder = pi r^2 h.",
    "Volume Rectangular Prism": "Volume = length x width x height.",
    "Volume Sphere": "Volume of a sphere = 4/3 pi r^3.",
    "Order of Operations +,-,/,* () positive reals": "Brackets first, then multiplication and "
    "division, then addition and subtraction, left to right.",
    "Order of Operations All": "Brackets, exponents, multiplication and division, then "
    "addition and subtraction.",
    "Equation Solving Two or Fewer Steps": "Undo addition or subtraction, then multiplication "
    "or division.",
    "Equation Solving More Than Two Steps": "Simplify each side, collect the variable on one "
    "side, then isolate it.",
    "Angles - Obtuse, Acute, and Right": "Acute is below 90 degrees, right is 90, obtuse is "
    "between 90 and 180.",
    "Greatest Common Factor": "The greatest common factor is the largest number dividing both.",
    "Computation with Real Numbers": "Keep track of signs and convert to one form before "
    "computing.",
    "Write Linear Equation from Ordered Pairs": "Find the slope from two points, then solve "
    "for the intercept.",
    "Write Linear Equation from Situation": "The starting amount is the intercept, the rate "
    "of change the slope.",
    "Recognize Linear Pattern": "A pattern is linear when it changes by the same amount each step.",
    "Write Linear Equation from Graph": "Read the intercept from the graph and count rise "
    "over run for the slope.",
    "Finding Slope From Situation": "The slope is the rate at which one quantity changes per "
    "unit of the other.",
    "Finding Slope From Equation": "Put the equation in the form y = mx + b; m is the slope.",
    "Finding Slope from Ordered Pairs": "Slope = (y2 - y1) / (x2 - x1).",
    "Distributive Property": "a(b + c) = ab + ac.",
    "Midpoint": "The midpoint averages the x-coordinates and the y-coordinates.",
    "Polynomial Factors": "Factoring writes a polynomial as a product of simpler ones.",
    "Recognize Quadratic Pattern": "A pattern is quadratic when its second differences are "
    "constant.",
    "Solving Systems of Linear Equations": "Use substitution or elimination to find the point "
    "that satisfies both equations.",
    "Quadratic Formula to Solve Quadratic Equation": "x = (-b +/- sqrt(b^2 - 4ac)) / 2a.",
    "Parts of a Polyomial, Terms, Coefficient, Monomial, Exponent, Variable": "Name each part: "
    "terms are separated by + and -, a coefficient multiplies a variable.",
    "Interpreting Coordinate Graphs": "Read what each axis measures before reading a point.",
    "Solving for a variable": "Rearrange a formula to get the chosen variable alone.",
    "Simplifying Expressions positive exponents": "Multiply powers by adding exponents and "
    "divide by subtracting them.",
    "Solving Inequalities": "Solve like an equation, but flip the sign when multiplying or "
    "dividing by a negative.",
    "Solving Systems of Linear Equations by Graphing": "The solution is where the two lines cross.",
}


@dataclass
class Answer:
    problem_id: str  # the original ASSISTments problem id
    skills: list[str]  # real skill names, in the order the file lists them
    correct: int


def write_gzip_text(path: Path, text: str) -> None:
    """Gzip with no file name and a zero time stamp, so the same text gives the same bytes."""
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(text.encode("utf-8"))


def read_akt_students(folder: Path) -> dict[str, list[Answer]]:
    """Every student's answers from the AKT 4-line files, keyed by the original user id.

    The AKT preprocessing writes one row per skill tag, so a problem tagged with two skills
    appears twice in a row with the same correctness; those rows are one answer here.
    """
    skill_names = {
        index: name.strip()
        for name, index in json.loads((folder / "skill.json").read_text()).items()
    }
    problem_ids = {
        index: problem_id
        for problem_id, index in json.loads((folder / "problems.json").read_text()).items()
    }
    students: dict[str, list[Answer]] = {}
    for path in sorted(folder.glob("assist2009_pid_*.csv.gz")):
        with gzip.open(path, "rt") as file:
            lines = [line.strip() for line in file if line.strip()]
        if len(lines) % 4:
            raise ValueError(f"{path}: {len(lines)} lines is not a multiple of 4")
        for start in range(0, len(lines), 4):
            _, user_id = lines[start].split(",")
            problems, skills, flags = (
                [value for value in line.split(",") if value]
                for line in lines[start + 1 : start + 4]
            )
            if not len(problems) == len(skills) == len(flags):
                raise ValueError(f"{path}: student {user_id} has lines of different lengths")
            answers: list[Answer] = []
            for problem, skill, flag in zip(problems, skills, flags, strict=True):
                problem_id = problem_ids[int(problem)]
                skill_name = skill_names[int(skill)]
                previous = answers[-1] if answers else None
                if previous and previous.problem_id == problem_id and previous.correct == int(flag):
                    if skill_name not in previous.skills:
                        previous.skills.append(skill_name)
                    continue
                answers.append(Answer(problem_id, [skill_name], int(flag)))
            students[user_id] = answers
    return students


def synthesise_timestamps(count: int, rng: random.Random) -> list[datetime]:
    """``count`` increasing times in sittings of 8-30 answers on distinct days of the window."""
    sittings: list[int] = []
    remaining = count
    while remaining:
        size = min(remaining, rng.randint(8, 30))
        sittings.append(size)
        remaining -= size
    days = sorted(rng.sample(range(1, TIMELINE_DAYS + 1), len(sittings)))
    times: list[datetime] = []
    for size, days_before_end in zip(sittings, reversed(days), strict=True):
        # A school day in the United States: 13:00-19:00 UTC is 8:00-14:00 Eastern time.
        moment = (
            TIMELINE_END
            - timedelta(days=days_before_end)
            + timedelta(hours=13, minutes=rng.randint(0, 6 * 60))
        )
        for _ in range(size):
            times.append(moment)
            moment += timedelta(seconds=rng.randint(20, 240))
    return sorted(times)


def write_assist_sample(data_dir: Path, rng: random.Random) -> dict[str, list[int]]:
    """Write the ASSISTments sample; return each skill's correctness flags (for difficulty)."""
    students = read_akt_students(data_dir / "assist2009" / "akt_folds")
    eligible = sorted(
        (user_id for user_id, answers in students.items() if len(answers) >= MIN_ANSWERS),
        key=int,
    )
    chosen = sorted(rng.sample(eligible, STUDENT_COUNT), key=int)
    outcomes: dict[str, list[int]] = defaultdict(list)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "item", "skills", "correct", "timestamp"])
    for user_id in chosen:
        answers = students[user_id][:MAX_ANSWERS]
        for answer, moment in zip(answers, synthesise_timestamps(len(answers), rng), strict=True):
            for skill in answer.skills:
                if ";" in skill:
                    raise ValueError(f"skill name {skill!r} contains the separator ';'")
                outcomes[skill].append(answer.correct)
            writer.writerow(
                [
                    f"a09-{user_id}",
                    f"a09-p{answer.problem_id}",
                    ";".join(answer.skills),
                    answer.correct,
                    moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                ]
            )
    write_gzip_text(OUTPUT_DIR / "assist2009_sample.csv.gz", buffer.getvalue())
    print(f"assist2009_sample.csv.gz: {len(chosen)} students of {len(eligible)} eligible")
    return outcomes


def write_asap_sample(data_dir: Path, rng: random.Random) -> None:
    with gzip.open(data_dir / "asap_sas" / "train.tsv.gz", "rt", encoding="utf-8") as file:
        header = file.readline().rstrip("\n").split("\t")
        rows = [line.rstrip("\n").split("\t") for line in file if line.strip()]
    if header != ["Id", "EssaySet", "Score1", "Score2", "EssayText"]:
        raise ValueError(f"unexpected ASAP-SAS header {header}")
    question_rows = [row for row in rows if row[1] == str(ASAP_SET)]
    chosen = sorted(rng.sample(question_rows, ASAP_RESPONSES), key=lambda row: int(row[0]))
    lines = ["\t".join(header)] + ["\t".join(row) for row in chosen]
    write_gzip_text(OUTPUT_DIR / f"asap_sas_set{ASAP_SET}.tsv.gz", "\n".join(lines) + "\n")
    (OUTPUT_DIR / f"asap_sas_set{ASAP_SET}_question.json").write_text(
        json.dumps(ASAP_QUESTION, indent=2) + "\n"
    )
    print(f"asap_sas_set{ASAP_SET}.tsv.gz: {len(chosen)} of {len(question_rows)} responses")


def write_resources(outcomes: dict[str, list[int]]) -> None:
    """Two resources per skill; difficulty follows the skill's error rate in the sample."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["external_id", "title", "kind", "url", "skills", "difficulty", "minutes", "body"]
    )
    for skill in sorted(outcomes):
        slug = re.sub(r"[^a-z0-9]+", "-", skill.lower()).strip("-")
        note = SKILL_NOTES[skill]
        error_rate = 1 - sum(outcomes[skill]) / len(outcomes[skill])
        reading_difficulty = round(min(max(error_rate - 0.15, 0.05), 0.95), 2)
        exercise_difficulty = round(min(max(error_rate + 0.1, 0.05), 0.95), 2)
        writer.writerow(
            [
                f"demo-{slug}-reading",
                f"{skill}: the key idea",
                "reading",
                "",
                skill,
                reading_difficulty,
                8,
                f"{note} This short reading explains the idea with one worked example and "
                "lists the mistakes students make most often.",
            ]
        )
        writer.writerow(
            [
                f"demo-{slug}-exercise",
                f"{skill}: practice set",
                "exercise",
                "",
                skill,
                exercise_difficulty,
                15,
                f"Ten practice questions on {skill}, easiest first, each with a hint and "
                f"a worked solution. Remember: {note[0].lower()}{note[1:]}",
            ]
        )
    (OUTPUT_DIR / "resources.csv").write_text(buffer.getvalue())
    print(f"resources.csv: {2 * len(outcomes)} resources for {len(outcomes)} skills")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--seed", type=int, default=2009)
    arguments = parser.parse_args()
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    # Separate generators per file: changing one sample does not reshuffle the others.
    outcomes = write_assist_sample(arguments.data_dir, random.Random(arguments.seed))
    write_asap_sample(arguments.data_dir, random.Random(arguments.seed + 1))
    write_resources(outcomes)
    total = sum(path.stat().st_size for path in OUTPUT_DIR.iterdir() if path.is_file())
    print(f"{OUTPUT_DIR}: {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
