"""The shell's session: the loaded embeddings, the settings (``:top``, ``:model``, ...), and
what each input line does. A run of neighbour queries is answered with one batch; a bad line is
reported and the session goes on."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from .common import error_line
from .lines import TooLong, line_problem, neighbors_each
from .shell_output import ShellFormat, ShellOutput

__all__ = ["COMMANDS", "Shell", "ShellError", "TooLong"]

COMMANDS = """\
TEXT                      nearest tokens to TEXT (the whole line)
:neighbors TEXT  (:n)     the same, for text that starts with ':'
:id N                     nearest tokens to token id N
:compare A B     (:c)     cosine, angle, Pearson, norms, B's rank among A's neighbours
:tokenize TEXT…  (:t)     how the tokenizer splits each TEXT
:analogy A B C   (:a)     A is to B as C is to ?  (nearest to B - A + C)
:top [N]                  show or set how many neighbours (now {top})
:model [NAME]             show the model, or load another one
:embeddings [KIND]        show or switch the matrix: input or output
:metric [M]               show or switch the metric: cosine, centered, abtt[:D], csls[:K]
:vector FILE[:ROW]        nearest tokens to a vector saved with numpy (.npy)
:centroid                 nearest tokens to the mean row
:in NAME TEXT             TEXT of this model read among NAME's tokens (align's map)
:help            (:h, :?) this list
:quit            (:q)     leave (Ctrl-D too)
Quote arguments with spaces: :compare " Mike" "New York".
#N in any query is token id N (:compare #2332 queen); \\#N is the text "#N"
(quoted in a command's arguments: :compare '\\#5' five)."""


class ShellError(Exception):
    """A bad shell line (unknown command, wrong arguments): reported, and the loop goes on."""


class Shell:
    """The query loop's state and one-line dispatcher; ``run_line`` is what each line does."""

    def __init__(
        self,
        emb: Any,  # api.Embeddings (import kept lazy)
        *,
        top: int,
        output: ShellFormat,
        interactive: bool,
        loader: Callable[[str, str, str], Any],
        embeddings: str = "input",
        skip_special: bool = True,
        metric: str = "cosine",
    ) -> None:
        from ..analyses.filters import Filters

        self.emb = emb
        self.filters = Filters(skip_special=skip_special)  # as `neighbors`: specials hidden
        self.top = top
        self.output = output
        self.interactive = interactive
        # (model, embeddings, metric) -> Embeddings, for :model, :embeddings and :metric
        self.loader = loader
        self.embeddings = embeddings
        self.metric = metric
        self.out = ShellOutput(output, interactive)
        self._other: tuple[tuple[str, str], Any] | None = None  # :in's model, kept loaded
        self._commands: dict[str, Callable[[str], None]] = {
            "neighbors": self.cmd_neighbors,
            "n": self.cmd_neighbors,
            "id": self.cmd_id,
            "compare": self.cmd_compare,
            "c": self.cmd_compare,
            "tokenize": self.cmd_tokenize,
            "t": self.cmd_tokenize,
            "analogy": self.cmd_analogy,
            "a": self.cmd_analogy,
            "top": self.cmd_top,
            "k": self.cmd_top,
            "model": self.cmd_model,
            "embeddings": self.cmd_embeddings,
            "metric": self.cmd_metric,
            "vector": self.cmd_vector,
            "centroid": self.cmd_centroid,
            "in": self.cmd_in,
            "help": self.cmd_help,
            "h": self.cmd_help,
            "?": self.cmd_help,
        }

    def run_line(self, line: str | None | TooLong) -> bool:
        """Handle one input line (None: a line that was not UTF-8); False when the shell should
        stop (:quit)."""
        return self.run_lines([line])

    def run_lines(self, lines: list[str | None | TooLong]) -> bool:
        """Handle lines in order, answering each run of neighbour queries with one batch;
        False when a line said :quit (the lines after it are not run)."""
        queries: list[Any] = []  # the pending run: a query (text or id) per line
        for line in lines:
            parsed = self._parse(line)
            if parsed is None:  # :quit
                self._flush(queries)
                return False
            command, rest = parsed
            if command == "" and rest is None:
                continue  # a blank line in table mode asks nothing
            query = self._neighbors_query(command, rest)
            if query is not None:
                queries.append((command or "neighbors", query))
                continue
            self._flush(queries)
            queries = []
            self._guarded(command, partial(self._dispatch, command, rest))
        self._flush(queries)
        return True

    def _parse(self, line: str | None | TooLong) -> tuple[str, Any] | None:
        """(command, its argument text) of a line; ("", error) for a line with no query."""
        if isinstance(line, str):
            line = line.rstrip("\r\n")
            if not line.strip() and self.output is not ShellFormat.json:
                return "", None  # a blank line at a prompt asks nothing
        problem = line_problem(line)
        if problem is not None:
            return "", ShellError(problem)
        assert isinstance(line, str)
        if not line.startswith(":"):
            return "neighbors", line
        name, _, rest = line[1:].partition(" ")
        command = name.strip().lower()
        if command in ("quit", "q", "exit"):
            return None
        return command, rest

    def _neighbors_query(self, command: str, rest: Any) -> Any:
        """The query of a neighbours line (text, or a ShellError for it), else None."""
        if command in ("neighbors", "n"):
            return rest if rest.strip() else ShellError("give the text to look up: :neighbors TEXT")
        if command == "id":
            try:
                return _int_arg(rest, ":id N")
            except ShellError as exc:
                return exc
        return None

    def _flush(self, queries: list[Any]) -> None:
        """Answer a run of neighbour queries with one batch, each line's result or error in
        input order."""
        if not queries:
            return
        from ..errors import TokneighError

        asked = [q for _, q in queries if not isinstance(q, ShellError)]
        answers = iter(neighbors_each(self.emb, asked, k=self.top, filters=self.filters))
        for command, q in queries:
            answer = q if isinstance(q, ShellError) else next(answers)
            if isinstance(answer, BrokenPipeError):  # the reader left, so must we
                raise answer
            if isinstance(answer, BaseException):
                internal = not isinstance(answer, (TokneighError, ShellError))
                self.error(command, answer, internal=internal)
            else:
                self.out.show("neighbors", answer)

    def _dispatch(self, command: str, rest: Any) -> None:
        if isinstance(rest, ShellError):
            raise rest
        handler = self._commands.get(command)
        if handler is None:
            raise ShellError(f"unknown command :{command} (type :help for the list)")
        handler(rest)

    def _guarded(self, command: str, action: Callable[[], Any], quiet: bool = False) -> Any:
        """Run one line's action; a bad line is reported and the loop goes on."""
        from ..errors import TokneighError

        try:
            return action()
        except (TokneighError, ShellError) as exc:
            if not quiet:
                self.error(command or "neighbors", exc)
        except BrokenPipeError:  # `tokneigh shell | head`: the reader left, so must we
            raise
        except Exception as exc:  # never let one line end the session
            if not quiet:
                self.error(command or "neighbors", exc, internal=True)
        return None

    def error(self, command: str, exc: BaseException, internal: bool = False) -> None:
        from .errors import describe

        if internal:
            message = f"internal error: {exc.__class__.__name__}: {exc}"
        elif isinstance(exc, ShellError):
            message = str(exc)
        else:
            # The session's commands are not options: no hint naming one (":id N", not --id).
            message = describe(exc, options=())[0]  # type: ignore[arg-type]
        error_line(message)
        if self.output is ShellFormat.json:
            # Scripts read one object per line: keep the outputs in step with the inputs.
            self.out.emit({"command": command, "error": " ".join(message.split())})

    def cmd_neighbors(self, text: str) -> None:
        self._flush([("neighbors", self._neighbors_query("neighbors", text))])

    def cmd_id(self, rest: str) -> None:
        self._flush([("id", self._neighbors_query("id", rest))])

    def cmd_compare(self, rest: str) -> None:
        a, b = _args(rest, 2, ":compare A B")
        self.out.show("compare", self.emb.compare(a, b, filters=self.filters))

    def cmd_tokenize(self, rest: str) -> None:
        texts = _args(rest, None, ":tokenize TEXT")
        self.out.show("tokenize", self.emb.vocabulary.tokenize_all(texts))

    def cmd_analogy(self, rest: str) -> None:
        a, b, c = _args(rest, 3, ":analogy A B C")
        self.out.show("analogy", self.emb.analogy(a, b, c, k=self.top, filters=self.filters))

    def cmd_top(self, rest: str) -> None:
        if rest.strip():
            self.top = _int_arg(rest, ":top N", minimum=1)
        self.out.notice("top", {"top": self.top}, f"showing {self.top} neighbours per query")

    def cmd_model(self, rest: str) -> None:
        name = rest.strip()
        if name:
            # A failure keeps the current model.
            self.emb = self.loader(name, self.embeddings, self.metric)
        self.out.notice("model", self._describe(), self.banner())

    def cmd_embeddings(self, rest: str) -> None:
        kind = rest.strip().lower()
        if kind:
            if kind not in ("input", "output"):
                raise ShellError(f"embeddings are 'input' or 'output', not {kind!r}")
            self.emb = self.loader(self.emb.model, kind, self.metric)
            self.embeddings = kind
        self.out.notice("embeddings", self._describe(), self.banner())

    def cmd_vector(self, rest: str) -> None:
        from ..analyses.vectors import load_vector

        [spec] = _args(rest, 1, ":vector FILE.npy[:ROW]")
        result = self.emb.neighbors(load_vector(spec), k=self.top, filters=self.filters)
        self.out.show("neighbors", result)

    def cmd_centroid(self, rest: str) -> None:
        result = self.emb.neighbors(self.emb.centroid(), k=self.top, filters=self.filters)
        self.out.show("neighbors", result)

    def cmd_in(self, rest: str) -> None:
        """`:in NAME TEXT`: the text after NAME and one space, as `:neighbors` takes it."""
        from .output import report

        name, _, text = rest.lstrip(" ").partition(" ")
        if not name or not text.strip():
            raise ShellError("expected :in NAME TEXT (a model, then the text to look up)")
        key = (name, self.embeddings)
        if self._other is None or self._other[0] != key:
            self._other = (key, self.loader(name, self.embeddings, "cosine"))
        [result] = self.emb.neighbors_in(
            self._other[1], [text], k=self.top, filters=self.filters, report=report
        )
        self.out.show("in", result)

    def cmd_metric(self, rest: str) -> None:
        name = rest.strip().lower()
        if name:
            self.emb = self.emb.under(name)  # a bad name keeps the current metric
            self.metric = self.emb.metric.name
        self.out.notice("metric", self._describe(), self.banner())

    def cmd_help(self, rest: str) -> None:
        text = COMMANDS.format(top=self.top)
        if self.output is ShellFormat.json:
            self.out.emit({"command": "help", "help": text})
        else:
            self.out.write(text + "\n")

    def _describe(self) -> dict[str, Any]:
        return {
            "model": self.emb.model,
            "embeddings": getattr(self.emb, "embeddings", "input"),
            "metric": self.metric,
            "vocab_size": self.emb.vocab_size,
            "dim": self.emb.dim,
        }

    def banner(self) -> str:
        from ..results import model_label

        kind = getattr(self.emb, "embeddings", "input")
        return (
            f"{model_label(self.emb.model)} ({kind} embeddings) · {self.emb.vocab_size:,} "
            f"tokens × {self.emb.dim} dims · top {self.top}"
            + ("" if self.metric == "cosine" else f" · {self.metric}")
        )


def _args(rest: str, count: int | None, usage: str) -> list[str]:
    import shlex  # only when a command has arguments: every tokneigh run imports this module

    try:
        args = shlex.split(rest)
    except ValueError as exc:  # an unclosed quote
        raise ShellError(f"cannot split the arguments ({exc}): expected {usage}") from exc
    if (count is not None and len(args) != count) or not args:
        raise ShellError(f"expected {usage}")
    return args


def _int_arg(rest: str, usage: str, minimum: int | None = None) -> int:
    text = rest.strip()
    try:
        value = int(text)
    except ValueError:
        raise ShellError(f"expected a whole number: {usage}") from None
    if minimum is not None and value < minimum:
        raise ShellError(f"expected a number of at least {minimum}: {usage}")
    return value
