"""`tokneigh align`: a map from one model's space to another's, and the tokens that moved most."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import (
    DEFAULT,
    DEFAULT_EMBEDDINGS,
    DEFAULT_FORMAT,
    MODEL_KINDS,
    AgainstEmbeddingsOption,
    CacheDirOption,
    EmbeddingsOption,
    FormatOption,
    ModelOption,
    help_text,
    non_empty_model,
)
from .help import HelpCommand
from .output import emit, load, report

HELP = """Align A's space to B's on the tokens they share, and rank the tokens that moved most.

A is --model (with --embeddings), B is --against (with --against-embeddings). Tokens are
matched by what they decode to, as `diff` matches them (GPT-2's "Ġking" is Llama's "▁king",
WordPiece's "##ing" only a continuation; byte fragments by their bytes). A seeded share of
the pairs (--test-share, --seed) is held out; the map is fitted on the rest: orthogonal
Procrustes when the dimensions agree, ridge least squares (--ridge) when they differ, each
model's rows centred and normalised as MUSE does, then --refine rounds of MUSE's refinement
(re-fitted on the mutual nearest neighbours under CSLS among the tokens of the first --pool
fitted pairs, each model's own).

Reported on the held-out pairs: P@1 and P@10 of finding the token's counterpart in B among
all of B's tokens (nearest neighbour and CSLS), the mean aligned cosine and the residual. Then
the --top tokens that moved most (1 - cos of A's vector mapped and B's), with their nearest
tokens in A and in B side by side; --output FILE writes the whole ranking (.csv, .tsv,
.jsonl). The map is kept in the cache, keyed by both models: a rebuilt one is aligned again.

Composed tokens: each token of A that B lacks is estimated in B as the mean of B's unit rows of
the pieces B's tokenizer splits its text into (FVT), and compared by cosine with A's vector
mapped; the summary sets that beside the same measure on the held-out matched tokens (most of
which B reads as one piece: their own row). --composed N lists the N least agreeing.

Examples:

  tokneigh align --model ./base --against ./fine-tuned

  tokneigh align --model gpt2 --against ./llama-style --refine 0 --format json

  tokneigh align --model ./base --against ./fine-tuned --top 50 --output drift.csv

  tokneigh align --model gpt2 --against ./llama-style --composed 20
"""


def align(
    against: Annotated[
        str,
        typer.Option(
            "--against",
            metavar="NAME",
            callback=non_empty_model,
            help=f"B: {MODEL_KINDS}.",
            show_default=False,
        ),
    ],
    against_embeddings: AgainstEmbeddingsOption = None,
    refine: Annotated[
        int, typer.Option("--refine", min=0, metavar="N", help="MUSE refinement rounds.")
    ] = 1,
    seed: Annotated[int, typer.Option("--seed", metavar="S", help="Seed of the split.")] = 0,
    test_share: Annotated[
        float,
        typer.Option("--test-share", metavar="F", help="Share of the pairs held out."),
    ] = 0.1,
    pool: Annotated[
        int,
        typer.Option(
            "--pool", min=2, metavar="N", help="Fitted pairs whose tokens a refinement searches."
        ),
    ] = 5_000,
    ridge: Annotated[
        float,
        typer.Option("--ridge", metavar="L", help="Ridge lambda (when the dimensions differ)."),
    ] = 1.0,
    top: Annotated[
        int, typer.Option("--top", "-k", min=0, metavar="N", help="Most moved tokens listed.")
    ] = 10,
    neighbors: Annotated[
        int,
        typer.Option(
            "--neighbors", min=0, metavar="N", help="Nearest tokens shown in A and B each."
        ),
    ] = 5,
    composed: Annotated[
        int,
        typer.Option(
            "--composed",
            min=0,
            metavar="N",
            help="Composed tokens listed (A's tokens B lacks, least agreeing first).",
        ),
    ] = 0,
    output_file: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="The whole drift ranking: .csv, .tsv or .jsonl.",
            show_default=False,
        ),
    ] = None,
    output: FormatOption = DEFAULT_FORMAT,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from ..analyses.align import Options

    Options(refine, seed, test_share, pool, ridge).check()  # before the (possibly slow) loads
    if output_file is not None:
        from ..present.driftfile import check_destination

        check_destination(output_file)
    a = load(model, cache_dir, embeddings)
    b = load(against, cache_dir, embeddings if against_embeddings is None else against_embeddings)
    result = a.align(
        b,
        refine=refine,
        seed=seed,
        test_share=test_share,
        pool=pool,
        ridge=ridge,
        top=top,
        neighbors=neighbors,
        composed=composed,
        report=report,
    )
    report(result.matching.line())
    if output_file is not None:
        from ..present.driftfile import write_ranking

        rows = write_ranking(result, output_file, a.token_text, b.token_text)
        report(f"wrote the drift of {rows:,} tokens to {output_file}")
    emit(result, output)


def register(app: typer.Typer) -> None:
    app.command("align", cls=HelpCommand, help=help_text(HELP))(align)
