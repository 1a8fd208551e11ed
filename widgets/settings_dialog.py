"""File → Settings…: one non-modal dialog for every preference, with Apply, OK and Cancel."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QDesktopServices, QIcon
from PySide6.QtWidgets import (
    QAbstractButton,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSpinBox,
    QStackedWidget,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from console.preferences import COMMON_CURRENCIES, DEFAULT_SURVEY_QUESTION, MAX_AGENT_NAME, Preferences, Theme
from console.sla.policy import PolicySet, shipped_policy
from widgets.dark import ThemeFollower
from widgets.net_easy_panel import SurveySettings
from widgets.screens import screen_of
from widgets.shortcut_help import Rebind, ShortcutEditor
from widgets.sla_settings import SlaPolicyEditor

if TYPE_CHECKING:
    from widgets.main_window import MainWindow

#: The theme choice as ``ThemeFollower.set_forced`` takes it.
THEME_FORCED: dict[Theme, bool | None] = {Theme.SYSTEM: None, Theme.LIGHT: False, Theme.DARK: True}
THEME_LABELS: dict[Theme, str] = {
    Theme.SYSTEM: "Follow the system",
    Theme.LIGHT: "Light",
    Theme.DARK: "Dark",
}


class Page(IntEnum):
    GENERAL = 0
    APPEARANCE = 1
    SLA = 2
    SURVEYS = 3
    REPORTS = 4
    NOTIFICATIONS = 5
    SHORTCUTS = 6


PAGE_TITLES: dict[Page, tuple[str, str]] = {
    Page.GENERAL: ("General", "Who you are and where Care Console keeps its data."),
    Page.APPEARANCE: ("Appearance", "Light or dark, or whatever the system uses."),
    Page.SLA: ("SLA", "Response and resolution targets per channel and priority, and your business hours."),
    Page.SURVEYS: ("Surveys", "The Net Easy question and how often one customer may be asked."),
    Page.REPORTS: ("Reports", "The cost of handling time in shift summaries and exports."),
    Page.NOTIFICATIONS: ("Notifications", "Desktop alerts when an item nears or passes its deadline."),
    Page.SHORTCUTS: ("Shortcuts", "Click the keys of an action and press the new combination."),
}


class SlaPolicies(Protocol):
    """What the SLA page reads and sets (console.sla.engine.SlaEngine)."""

    @property
    def policies(self) -> PolicySet: ...

    def set_policies(self, policies: PolicySet) -> list[int]: ...


class _Refused(Exception):
    """An input the agent must fix: the page to show, the message and the widget to focus."""

    def __init__(self, page: Page, message: str, widget: QWidget | None = None) -> None:
        super().__init__(message)
        self.page = page
        self.widget = widget


def apply_theme(follower: ThemeFollower, theme: Theme) -> None:
    """Colour the window as ``theme`` says (at start-up and on Apply)."""
    follower.set_forced(THEME_FORCED[theme])


def open_folder(path: Path) -> bool:
    """Show ``path`` in the platform's file manager."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


class SettingsDialog(QDialog):
    """Every preference on one page each; nothing is stored before Apply or OK, and bad input is refused with
    a message while every field keeps what was typed. Shortcut changes take effect at once (so that they can be
    tried) and Cancel undoes those made since the last Apply."""

    #: Apply or OK stored the settings.
    applied = Signal()

    def __init__(
        self,
        prefs: Preferences,
        *,
        parent: QWidget | None = None,
        theme: ThemeFollower | None = None,
        sla: SlaPolicies | None = None,
        sla_defaults: PolicySet | None = None,
        surveys: SurveySettings | None = None,
        dnd_action: QAction | None = None,
        shortcut_groups: Sequence[tuple[str, Sequence[QAction]]] = (),
        rebind: Rebind | None = None,
        folder_opener: Callable[[Path], bool] = open_folder,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        self._prefs = prefs
        self._theme = theme
        self._sla = sla
        self._surveys = surveys
        self._dnd_action = dnd_action
        self._folder_opener = folder_opener

        self.nav = QListWidget()
        self.nav.setObjectName("settingsNav")
        self.nav.setFixedWidth(170)
        self.nav.setIconSize(QSize(0, 0))
        self.stack = QStackedWidget()
        self.stack.setObjectName("settingsStack")
        builders: dict[Page, Callable[[], QWidget]] = {
            Page.GENERAL: self._build_general,
            Page.APPEARANCE: self._build_appearance,
            Page.SLA: lambda: self._build_sla(sla_defaults),
            Page.SURVEYS: self._build_surveys,
            Page.REPORTS: self._build_reports,
            Page.NOTIFICATIONS: self._build_notifications,
            Page.SHORTCUTS: lambda: self._build_shortcuts(shortcut_groups, rebind),
        }
        for page, build in builders.items():
            title, subtitle = PAGE_TITLES[page]
            self.nav.addItem(QListWidgetItem(title))
            self.stack.addWidget(self._page(title, subtitle, build()))
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)

        self.error = QLabel()
        self.error.setObjectName("settingsError")
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.setWordWrap(True)
        self.error.hide()
        self.status = QLabel()
        self.status.setObjectName("settingsStatus")
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.Apply
        )
        for button in self.buttons.buttons():
            button.setIcon(QIcon())  # plain text buttons, as everywhere else in the app
            button.setMinimumWidth(88)
        self.buttons.accepted.connect(self._on_buttons_accepted)
        self.buttons.rejected.connect(self.reject)
        self.buttons.clicked.connect(self._on_buttons_clicked)

        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(0)
        body.addWidget(self.nav)
        body.addWidget(self.stack, 1)
        footer = QWidget()
        footer.setObjectName("settingsFooter")
        footer_layout = QVBoxLayout(footer)
        footer_layout.setContentsMargins(18, 10, 18, 12)
        footer_layout.addWidget(self.error)
        row = QHBoxLayout()
        row.addWidget(self.status, 1)
        row.addWidget(self.buttons)
        footer_layout.addLayout(row)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(body, 1)
        layout.addWidget(footer)
        self.nav.setCurrentRow(0)
        # At most the screen's free area less room for the title bar: on an 800x600 screen, 980x660 put OK,
        # Cancel and Apply below the screen's edge (found walking the shift under Xvfb).
        screen = screen_of(parent if parent is not None else self)
        free = screen.availableGeometry().size() if screen is not None else QSize(980, 700)
        self.resize(min(980, free.width() - 20), min(660, free.height() - 60))

    # ------------------------------------------------------------------ pages
    @staticmethod
    def _page(title: str, subtitle: str, content: QWidget) -> QWidget:
        page = QWidget()
        page.setObjectName("settingsPage")
        layout = QVBoxLayout(page)
        layout.setContentsMargins(22, 18, 22, 8)
        layout.setSpacing(4)
        heading = QLabel(title)
        heading.setObjectName("settingsPageTitle")
        hint = QLabel(subtitle)
        hint.setObjectName("panelHint")
        hint.setWordWrap(True)
        layout.addWidget(heading)
        layout.addWidget(hint)
        layout.addSpacing(10)
        layout.addWidget(content, 1)
        return page

    @staticmethod
    def _form(parent: QWidget) -> QFormLayout:
        """A form at the top of ``parent`` (rows keep their natural height)."""
        outer = QVBoxLayout(parent)
        outer.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        outer.addLayout(form)
        outer.addStretch(1)
        form.setContentsMargins(0, 0, 0, 0)
        form.setHorizontalSpacing(16)
        form.setVerticalSpacing(12)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        return form

    @staticmethod
    def _hint(text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName("panelHint")
        label.setWordWrap(True)
        label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        label.setMinimumWidth(360)
        return label

    def _build_general(self) -> QWidget:
        content = QWidget()
        form = self._form(content)
        self.agent_name = QLineEdit(self._prefs.agent_name)
        self.agent_name.setObjectName("settingsAgentName")
        self.agent_name.setMaxLength(MAX_AGENT_NAME + 20)  # longer input is refused with a message, not cut
        self.agent_name.setPlaceholderText("e.g. Sam")
        form.addRow("Your name", self.agent_name)
        form.addRow("", self._hint("Shown on your replies, notes and shift reports, and in the event history."))
        folder_row = QHBoxLayout()
        self.data_folder = QLineEdit(str(self._prefs.data_dir))
        self.data_folder.setObjectName("settingsDataFolder")
        self.data_folder.setReadOnly(True)
        self.open_folder_button = QPushButton("Open folder")
        self.open_folder_button.setObjectName("settingsOpenFolder")
        self.open_folder_button.clicked.connect(self._on_open_folder_button_clicked)
        folder_row.addWidget(self.data_folder, 1)
        folder_row.addWidget(self.open_folder_button)
        form.addRow("Data folder", folder_row)
        form.addRow(
            "",
            self._hint(
                "The database, window layout and crash reports. Back it up by copying the folder while Care Console "
                "is closed. Account tokens are not here: they stay in the system keyring."
            ),
        )
        return content

    def _build_appearance(self) -> QWidget:
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(10)
        self.theme_group = QButtonGroup(self)
        self.theme_buttons: dict[Theme, QRadioButton] = {}
        current = self._prefs.theme
        for theme, label in THEME_LABELS.items():
            button = QRadioButton(label)
            button.setObjectName(f"settingsTheme_{theme.value}")
            button.setChecked(theme is current)
            self.theme_group.addButton(button)
            self.theme_buttons[theme] = button
            layout.addWidget(button)
        layout.addWidget(self._hint("“Follow the system” switches with the desktop's light or dark setting."))
        layout.addStretch(1)
        return content

    def _build_sla(self, defaults: PolicySet | None) -> QWidget:
        self.sla_editor: SlaPolicyEditor | None = None
        if self._sla is None:
            return self._hint("SLA policies are not available in this session.")
        self.sla_editor = SlaPolicyEditor(self._sla.policies, defaults=defaults or shipped_policy())
        return self.sla_editor

    def _build_surveys(self) -> QWidget:
        content = QWidget()
        if self._surveys is None:
            layout = QVBoxLayout(content)
            layout.addWidget(self._hint("Surveys are not available in this session."))
            layout.addStretch(1)
            return content
        form = self._form(content)
        self.survey_question = QPlainTextEdit(self._surveys.question)
        self.survey_question.setObjectName("settingsSurveyQuestion")
        self.survey_question.setTabChangesFocus(True)
        self.survey_question.setFixedHeight(84)
        form.addRow("Question", self.survey_question)
        default_row = QHBoxLayout()
        self.survey_default = QPushButton("Use the default question")
        self.survey_default.clicked.connect(self._on_survey_default_clicked)
        default_row.addWidget(self.survey_default)
        default_row.addStretch(1)
        form.addRow("", default_row)
        form.addRow("", self._hint("Keep both ends of the scale in the question, e.g. 1 (extremely easy) and 7 "
                                   "(extremely difficult): customers mix up the direction otherwise."))  # fmt: skip
        self.survey_days = QSpinBox()
        self.survey_days.setObjectName("settingsSurveyDays")
        self.survey_days.setRange(0, 180)
        self.survey_days.setSuffix(" days")
        self.survey_days.setValue(self._surveys.customer_days)
        form.addRow("Ask one customer at most every", self.survey_days)
        form.addRow("", self._hint("Never two surveys to one customer within 24 hours, whatever this says."))
        self.survey_ask = QCheckBox("Offer to send the survey after resolving an item")
        self.survey_ask.setObjectName("settingsSurveyAsk")
        self.survey_ask.setChecked(self._surveys.prompt_after_resolve)
        form.addRow("", self.survey_ask)
        return content

    def _build_reports(self) -> QWidget:
        content = QWidget()
        form = self._form(content)
        self.hourly_rate = QDoubleSpinBox()
        self.hourly_rate.setObjectName("settingsHourlyRate")
        self.hourly_rate.setRange(0.0, 10_000.0)
        self.hourly_rate.setDecimals(2)
        self.hourly_rate.setSingleStep(1.0)
        self.hourly_rate.setValue(self._prefs.hourly_rate)
        self.hourly_rate.setMinimumWidth(140)
        self.currency = QComboBox()
        self.currency.setObjectName("settingsCurrency")
        self.currency.setEditable(True)
        self.currency.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.currency.addItems(COMMON_CURRENCIES)
        self.currency.setCurrentText(self._prefs.currency)
        self.currency.setMinimumWidth(100)
        rate_row = QHBoxLayout()
        rate_row.addWidget(self.hourly_rate)
        rate_row.addWidget(self.currency)
        rate_row.addWidget(QLabel("per hour"))
        rate_row.addStretch(1)
        form.addRow("Cost of an agent hour", rate_row)
        form.addRow(
            "",
            self._hint(
                "Shift summaries show the handling time per channel and what it cost at this rate. The currency is "
                "a three-letter code (EUR, USD, GBP…). Summaries already saved keep the rate they were made with."
            ),
        )
        return content

    def _build_notifications(self) -> QWidget:
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(10)
        self.do_not_disturb = QCheckBox("Do not disturb: no desktop notifications")
        self.do_not_disturb.setObjectName("settingsDoNotDisturb")
        if self._dnd_action is not None:
            self.do_not_disturb.setChecked(self._dnd_action.isChecked())
        else:
            self.do_not_disturb.setEnabled(False)
        layout.addWidget(self.do_not_disturb)
        layout.addWidget(
            self._hint(
                "Care Console notifies once per item when it enters the warning band and when it breaches its "
                "deadline. Under do not disturb nothing pops up and nothing is replayed later; the tray keeps "
                "counting the items near breach. Also in View → Do not disturb and the tray menu."
            )
        )
        if not QSystemTrayIcon.isSystemTrayAvailable():
            layout.addWidget(self._hint("This desktop has no system tray, so notifications cannot be shown here."))
        layout.addStretch(1)
        return content

    def _build_shortcuts(self, groups: Sequence[tuple[str, Sequence[QAction]]], rebind: Rebind | None) -> QWidget:
        self.shortcut_editor = ShortcutEditor(groups, rebind=rebind)
        self.shortcut_editor.message.setText(
            "Click the keys of an action and press the new combination; the clear button removes it. Changes work "
            "at once; Cancel undoes those not yet applied."
        )
        return self.shortcut_editor

    # ------------------------------------------------------------------ public API
    def show_page(self, page: Page) -> None:
        self.nav.setCurrentRow(page)

    def current_page(self) -> Page:
        return Page(self.stack.currentIndex())

    def error_text(self) -> str:
        return self.error.text() if not self.error.isHidden() else ""

    def apply(self) -> bool:
        """Check every page, then store everything; on bad input store nothing and show why.

        Returns:
            Whether the settings were stored.
        """
        try:
            commits = self._collect()
            for commit in commits:
                commit()
        except _Refused as refused:
            self.show_page(refused.page)
            self.error.setText(f"{PAGE_TITLES[refused.page][0]}: {refused}")
            self.error.show()
            self.status.clear()
            if refused.widget is not None:
                refused.widget.setFocus(Qt.FocusReason.OtherFocusReason)
            return False
        self.shortcut_editor.commit()
        self.error.hide()
        self.status.setText("Settings saved.")
        self.applied.emit()
        return True

    # ------------------------------------------------------------------ apply
    def _collect(self) -> list[Callable[[], None]]:
        """What Apply will do, checked; raises _Refused before anything is stored.

        The survey question is checked by storing it, so it goes first: when it is refused nothing else is stored.
        """
        commits: list[Callable[[], None]] = []
        prefs = self._prefs
        try:
            # Never asked yet (no welcome flow, the demo): other settings can be applied without a name.
            unnamed = not self.agent_name.text().strip() and not prefs.agent_name.strip()
            name = prefs.agent_name if unnamed else prefs.check_agent_name(self.agent_name.text())
        except ValueError as exc:
            raise _Refused(Page.GENERAL, str(exc), self.agent_name) from exc
        try:
            rate = prefs.check_hourly_rate(self.hourly_rate.value())
            currency = prefs.check_currency(self.currency.currentText())
        except ValueError as exc:
            raise _Refused(Page.REPORTS, str(exc), self.currency) from exc
        policies: PolicySet | None = None
        if self._sla is not None and self.sla_editor is not None:
            try:
                policies = self.sla_editor.policy_set()
            except ValueError as exc:
                raise _Refused(Page.SLA, str(exc), self.sla_editor) from exc
            self.sla_editor.error.hide()

        if self._surveys is not None:
            surveys = self._surveys
            question = " ".join(self.survey_question.toPlainText().split())
            if question != " ".join(surveys.question.split()):
                try:
                    surveys.set_question(question)
                except ValueError as exc:
                    raise _Refused(Page.SURVEYS, str(exc), self.survey_question) from exc
            days, ask = self.survey_days.value(), self.survey_ask.isChecked()

            def commit_surveys() -> None:
                surveys.set_customer_days(days)
                surveys.set_prompt_after_resolve(ask)

            commits.append(commit_surveys)
        if name != prefs.agent_name:
            commits.append(lambda: prefs.set_agent_name(name))
        if (rate, currency) != (prefs.hourly_rate, prefs.currency):
            commits.append(lambda: prefs.set_report_cost(rate, currency))
        commits.append(lambda: self.currency.setCurrentText(currency))
        theme = next(t for t, b in self.theme_buttons.items() if b.isChecked())
        commits.append(lambda: self._commit_theme(theme))
        if self._dnd_action is not None:
            dnd_action, dnd = self._dnd_action, self.do_not_disturb.isChecked()
            commits.append(lambda: dnd_action.setChecked(dnd))  # the tray's action saves it (AlertMonitor)
        if self._sla is not None and policies is not None and policies != self._sla.policies:
            sla, chosen = self._sla, policies

            def commit_sla() -> None:
                sla.set_policies(chosen)

            commits.append(commit_sla)
        return commits

    def _commit_theme(self, theme: Theme) -> None:
        self._prefs.set_theme(theme)
        if self._theme is not None:
            apply_theme(self._theme, theme)

    # ------------------------------------------------------------------ slots
    @Slot()
    def _on_buttons_accepted(self) -> None:
        if self.apply():
            self.accept()

    @Slot(QAbstractButton)
    def _on_buttons_clicked(self, button: QAbstractButton) -> None:
        if self.buttons.buttonRole(button) is QDialogButtonBox.ButtonRole.ApplyRole:
            self.apply()

    @Slot()
    def reject(self) -> None:
        """Cancel: nothing not yet applied is stored; shortcut changes made here are undone."""
        self.shortcut_editor.revert()
        super().reject()

    @Slot()
    def _on_open_folder_button_clicked(self) -> None:
        if not self._folder_opener(self._prefs.data_dir):
            self.status.setText(f"Could not open {self._prefs.data_dir}; it is copied in the field beside the button.")

    @Slot()
    def _on_survey_default_clicked(self) -> None:
        self.survey_question.setPlainText(DEFAULT_SURVEY_QUESTION)


def open_settings_dialog(window: MainWindow, prefs: Preferences, *, sla: SlaPolicies | None = None,
                         surveys: SurveySettings | None = None) -> SettingsDialog:  # fmt: skip
    """Open File → Settings… non-modally (STYLE B2), or raise the one already open."""
    for existing in window.findChildren(SettingsDialog):
        if existing.isVisible():
            existing.raise_()
            existing.activateWindow()
            return existing
    workbench = window.workbench
    tray = workbench.tray
    dialog = SettingsDialog(
        prefs,
        parent=window,
        theme=window.theme,
        sla=sla,
        surveys=surveys,
        dnd_action=tray.dnd_action if tray is not None else None,
        shortcut_groups=workbench.shortcut_groups(),
        rebind=workbench.rebind,
    )
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.applied.connect(window.refresh_queue)  # SLA changes move deadlines
    dialog.setModal(False)  # the agent can keep working, and Apply shows the effect at once
    dialog.show()  # never exec() (STYLE B2)
    return dialog
