"""`tokneigh scan`: tokens ranked from most to least likely under-trained."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import (
    DEFAULT,
    DEFAULT_FORMAT,
    CacheDirOption,
    EmbeddingsKind,
    FormatOption,
    ModelOption,
    help_text,
)
from .filters import IncludeSpecialOption, PlotOption
from .help import HelpCommand
from .output import emit, load, report

HELP = """Rank tokens from most to least likely under-trained ("glitch" tokens).

Indicators, smallest score first: magikarp (the default; Land & Bartolo 2024, "Fishing for
Magikarp"): the cosine distance of each token's embedding to the mean of reference tokens known
to be unused, first principal component removed, on the output embeddings when the model has
its own; norm: the L2 norm of the input embedding; centroid: the distance to the mean row.

The automatic reference is every token the tokenizer can never produce (encoding its own text
does not yield it) and every named unused slot ([unused12], <|reserved_special_token_5|>);
byte fragments that valid text can still contain and control tokens are not part of it. Or give
token ids: 177,178,179 or 177-187.

Every usable row is scored; the list leaves out special tokens ([CLS], [unused12], rows the
tokenizer does not name) unless --include-special, and with --exclude-reference the reference
tokens too (they are known to be unused: what is left is news). Ranks run over what is listed.

Examples:

  tokneigh scan --top 20 --exclude-reference

  tokneigh scan --reference 177-187 --format json

  tokneigh scan --indicator norm --plot norms.png
"""

# Which matrix each indicator reads unless told: magikarp the LM head (input when tied).
_MATRIX = {"magikarp": "output", "norm": "input", "centroid": "input"}


def scan(
    top: Annotated[
        int, typer.Option("--top", "-k", metavar="N", help="How many tokens to list.")
    ] = 20,
    indicator: Annotated[
        str,
        typer.Option("--indicator", metavar="magikarp|norm|centroid", help="What to rank by."),
    ] = "magikarp",
    reference: Annotated[
        str,
        typer.Option(
            "--reference",
            metavar="auto|IDS",
            help="magikarp's tokens known to be unused: auto, or ids such as 177,178 or 177-187.",
        ),
    ] = "auto",
    exclude_reference: Annotated[
        bool,
        typer.Option(
            "--exclude-reference",
            help="Leave magikarp's reference tokens (known to be unused) out of the list.",
        ),
    ] = False,
    include_special: IncludeSpecialOption = False,
    plot: PlotOption = None,
    output: FormatOption = DEFAULT_FORMAT,
    embeddings: Annotated[
        EmbeddingsKind | None,
        typer.Option(
            "--embeddings",
            case_sensitive=False,
            metavar="input|output",
            help="Which matrix (default: output for magikarp, input for norm and centroid).",
            show_default=False,
        ),
    ] = None,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from ..analyses.scan import check_request, parse_reference
    from ..analyses.scan import scan as run_scan
    from ..errors import UsageError

    check_request(indicator, top)  # a typo fails before the model loads
    if exclude_reference and indicator != "magikarp":
        raise UsageError(f"--exclude-reference: the {indicator} indicator uses no reference")
    parse_reference(reference, None)  # so does a misspelt reference
    if plot is not None:
        from ..present.plot import check_destination

        check_destination(plot)  # fail before any work
    kind = embeddings.value if embeddings is not None else _MATRIX[indicator]
    emb = load(model, cache_dir, kind)
    result = run_scan(
        emb.view,
        indicator=indicator,
        reference=reference,
        top=top,
        include_special=include_special,
        exclude_reference=exclude_reference,
    )
    line = result.reference_line()
    if line is not None and output != DEFAULT_FORMAT:  # a table says it in its subtitle
        report(line)
    if plot is not None:
        from ..present.plot import scan_histogram

        scan_histogram(result, plot)
        report(f"wrote {plot}")
    emit(result, output)


def register(app: typer.Typer) -> None:
    app.command("scan", cls=HelpCommand, help=help_text(HELP))(scan)
