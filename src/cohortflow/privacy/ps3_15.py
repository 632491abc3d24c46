"""DICOM PS3.15 data: Table E.1-1 (Basic Profile column), CID 7050, and cohortflow's keep-list.

Data only; :mod:`cohortflow.privacy.deidentify` applies it and :mod:`cohortflow.privacy.phi`
derives the PHI scanner's search terms from it. The table keeps the standard's action codes
verbatim (compound ones included) so that it can be checked against the standard line by line.

:data:`ACQUISITION_KEEP_LIST` is ours, not the standard's: the attributes that the profile does
not name and that a de-identified image keeps. The Basic Profile keeps every attribute it does
not list (K); cohortflow removes them instead unless they are on this list, so that a vendor's
new free-text attribute, or an old one the table forgot, cannot carry an identifier through.
The list holds the structure of the image (SOP common, pixel, plane, frame, functional-group
macros) and acquisition parameters: numbers and coded values of fixed vocabularies, plus the
equipment's make, model and software version.
"""

from __future__ import annotations

from pydicom.tag import BaseTag, Tag

# PS3.15 (2024b) Table E.1-1, Basic Profile column, by pydicom keyword (tag in the comment).
# Private attributes, curves (50xx,xxxx) and overlays (60xx,xxxx) have no fixed tag: see
# profile_action.
TABLE_E1_1: dict[str, str] = {
    "AccessionNumber": "Z",  # (0008,0050)
    "AcquisitionComments": "X",  # (0018,4000)
    "AcquisitionContextSequence": "X/Z",  # (0040,0555)
    "AcquisitionDate": "X/Z",  # (0008,0022)
    "AcquisitionDateTime": "X/Z/D",  # (0008,002A)
    "AcquisitionDeviceProcessingDescription": "X/D",  # (0018,1400)
    "AcquisitionFieldOfViewLabel": "D",  # (0018,11BB)
    "AcquisitionProtocolDescription": "X",  # (0018,9424)
    "AcquisitionTime": "X/Z",  # (0008,0032)
    "AcquisitionUID": "U",  # (0008,0017)
    "ActualHumanPerformersSequence": "X",  # (0040,4035)
    "AdditionalPatientHistory": "X",  # (0010,21B0)
    "AddressTrial": "X",  # (0040,A353)
    "AdmissionID": "X",  # (0038,0010)
    "AdmittingDate": "X",  # (0038,0020)
    "AdmittingDiagnosesCodeSequence": "X",  # (0008,1084)
    "AdmittingDiagnosesDescription": "X",  # (0008,1080)
    "AdmittingTime": "X",  # (0038,0021)
    "AffectedSOPInstanceUID": "X",  # (0000,1000)
    "Allergies": "X",  # (0010,2110)
    "AnnotationGroupDescription": "X",  # (006A,0006)
    "AnnotationGroupLabel": "D",  # (006A,0005)
    "AnnotationGroupUID": "D",  # (006A,0003)
    "ApprovalStatusDateTime": "X",  # (0044,0004)
    "Arbitrary": "X",  # (4000,0010)
    "AssertionDateTime": "D",  # (0044,0104)
    "AssertionExpirationDateTime": "X",  # (0044,0105)
    "AttributeModificationDateTime": "D",  # (0400,0562)
    "AuthorObserverSequence": "X",  # (0040,A078)
    "BarcodeValue": "X/Z",  # (2200,0005)
    "BeamDescription": "X",  # (300A,00C3)
    "BeamHoldTransitionDateTime": "D",  # (300C,0127)
    "BolusDescription": "X",  # (300A,00DD)
    "BranchOfService": "X",  # (0010,1081)
    "CalibrationDate": "X",  # (0014,407E)
    "CalibrationDateTime": "Z",  # (0018,1203)
    "CalibrationTime": "X",  # (0014,407C)
    "CameraOwnerName": "X",  # (0016,004D)
    "CassetteID": "X",  # (0018,1007)
    "CertificateOfSigner": "D",  # (0400,0115)
    "CertifiedTimestamp": "X",  # (0400,0310)
    "ClinicalTrialCoordinatingCenterName": "Z",  # (0012,0060)
    "ClinicalTrialProtocolEthicsCommitteeApprovalNumber": "X",  # (0012,0082)
    "ClinicalTrialProtocolEthicsCommitteeName": "D",  # (0012,0081)
    "ClinicalTrialProtocolID": "D",  # (0012,0020)
    "ClinicalTrialProtocolName": "Z",  # (0012,0021)
    "ClinicalTrialSeriesDescription": "X",  # (0012,0072)
    "ClinicalTrialSeriesID": "X",  # (0012,0071)
    "ClinicalTrialSiteID": "Z",  # (0012,0030)
    "ClinicalTrialSiteName": "Z",  # (0012,0031)
    "ClinicalTrialSponsorName": "D",  # (0012,0010)
    "ClinicalTrialSubjectID": "D",  # (0012,0040)
    "ClinicalTrialSubjectReadingID": "D",  # (0012,0042)
    "ClinicalTrialTimePointDescription": "X",  # (0012,0051)
    "ClinicalTrialTimePointID": "Z",  # (0012,0050)
    "CommentsOnRadiationDose": "X",  # (0040,0310)
    "CommentsOnThePerformedProcedureStep": "X",  # (0040,0280)
    "CompensatorDescription": "X",  # (300A,02EB)
    "ConcatenationUID": "U",  # (0020,9161)
    "ConceptualVolumeCombinationDescription": "Z",  # (3010,000F)
    "ConceptualVolumeDescription": "Z",  # (3010,0017)
    "ConceptualVolumeUID": "U",  # (3010,0006)
    "ConfidentialityConstraintOnPatientDataDescription": "X",  # (0040,3001)
    "ConstituentConceptualVolumeUID": "U",  # (3010,0013)
    "ConsultingPhysicianIdentificationSequence": "X",  # (0008,009D)
    "ConsultingPhysicianName": "Z",  # (0008,009C)
    "ContainerComponentID": "X",  # (0050,001B)
    "ContainerDescription": "X",  # (0040,051A)
    "ContainerIdentifier": "D",  # (0040,0512)
    "ContentCreatorIdentificationCodeSequence": "X",  # (0070,0086)
    "ContentCreatorName": "Z/D",  # (0070,0084)
    "ContentDate": "Z/D",  # (0008,0023)
    "ContentSequence": "D",  # (0040,A730)
    "ContentTime": "Z/D",  # (0008,0033)
    "ContextGroupLocalVersion": "D",  # (0008,0107)
    "ContextGroupVersion": "D",  # (0008,0106)
    "ContrastBolusAgent": "Z/D",  # (0018,0010)
    "ContrastBolusStartTime": "X",  # (0018,1042)
    "ContrastBolusStopTime": "X",  # (0018,1043)
    "ContributionDateTime": "X",  # (0018,A002)
    "ContributionDescription": "X",  # (0018,A003)
    "CountryOfResidence": "X",  # (0010,2150)
    "CreationDate": "X",  # (2100,0040)
    "CreationTime": "X",  # (2100,0050)
    "CurrentObserverTrial": "X",  # (0040,A307)
    "CurrentPatientLocation": "X",  # (0038,0300)
    "CurveDate": "X",  # (0008,0025)
    "CurveTime": "X",  # (0008,0035)
    "CustodialOrganizationSequence": "X",  # (0040,A07C)
    "DataSetTrailingPadding": "X",  # (FFFC,FFFC)
    "Date": "D",  # (0040,A121)
    "DateOfDocumentOrVerbalTransactionTrial": "X",  # (0040,A110)
    "DateOfInstallation": "X",  # (0018,1205)
    "DateOfLastCalibration": "X",  # (0018,1200)
    "DateOfLastDetectorCalibration": "X/D",  # (0018,700C)
    "DateOfManufacture": "X",  # (0018,1204)
    "DateOfSecondaryCapture": "X",  # (0018,1012)
    "DateTime": "D",  # (0040,A120)
    "DateTimeOfLastCalibration": "X",  # (0018,1202)
    "DecayCorrectionDateTime": "D",  # (0018,9701)
    "DecompositionDescription": "X",  # (0018,937F)
    "DerivationDescription": "X",  # (0008,2111)
    "DestinationAE": "D",  # (2100,0140)
    "DetectorID": "X/D",  # (0018,700A)
    "DeviceAlternateIdentifier": "Z",  # (3010,001B)
    "DeviceDescription": "X",  # (0050,0020)
    "DeviceLabel": "D",  # (3010,002D)
    "DeviceSerialNumber": "X/Z/D",  # (0018,1000)
    "DeviceSettingDescription": "X",  # (0016,004B)
    "DeviceUID": "U",  # (0018,1002)
    "DigitalSignatureDateTime": "D",  # (0400,0105)
    "DigitalSignaturesSequence": "X",  # (FFFA,FFFA)
    "DigitalSignatureUID": "U",  # (0400,0100)
    "DimensionOrganizationUID": "U",  # (0020,9164)
    "DischargeDate": "X",  # (0038,0030)
    "DischargeDiagnosisDescription": "X",  # (0038,0040)
    "DischargeTime": "X",  # (0038,0032)
    "DisplacementReferenceLabel": "X",  # (300A,079A)
    "DistributionAddress": "X",  # (4008,011A)
    "DistributionName": "X",  # (4008,0119)
    "DoseReferenceDescription": "X",  # (300A,0016)
    "DoseReferenceUID": "U",  # (300A,0013)
    "DosimetricObjectiveUID": "U",  # (3010,006E)
    "EffectiveDateTime": "D",  # (0068,6226)
    "EncapsulatedDocument": "D",  # (0042,0011)
    "EndAcquisitionDateTime": "X/D",  # (0018,9517)
    "EntityDescription": "X",  # (3010,0037)
    "EntityLabel": "D",  # (3010,0035)
    "EntityLongLabel": "D",  # (3010,0038)
    "EntityName": "X",  # (3010,0036)
    "EquipmentFrameOfReferenceDescription": "X",  # (300A,0676)
    "EthicsCommitteeApprovalEffectivenessEndDate": "X",  # (0012,0087)
    "EthicsCommitteeApprovalEffectivenessStartDate": "X",  # (0012,0086)
    "EthnicGroup": "X",  # (0010,2160)
    "ExclusionStartDateTime": "D",  # (0018,9804)
    "ExpectedCompletionDateTime": "X",  # (0040,4011)
    "FailedSOPInstanceUIDList": "U",  # (0008,0058)
    "FiducialUID": "U",  # (0070,031A)
    "FillerOrderNumberImagingServiceRequest": "Z",  # (0040,2017)
    "FilterLookupTableDescription": "X",  # (003A,032B)
    "FindingsGroupRecordingDateTrial": "X",  # (0040,A023)
    "FindingsGroupRecordingTimeTrial": "X",  # (0040,A024)
    "FirstTreatmentDate": "X/D",  # (3008,0054)
    "FixationDeviceDescription": "X",  # (300A,0196)
    "FlowIdentifier": "D",  # (0034,0002)
    "FlowIdentifierSequence": "D",  # (0034,0001)
    "FractionationNotes": "Z",  # (3010,007F)
    "FractionGroupDescription": "X",  # (300A,0072)
    "FrameAcquisitionDateTime": "D",  # (0018,9074)
    "FrameComments": "X",  # (0020,9158)
    "FrameOfReferenceUID": "U",  # (0020,0052)
    "FrameOriginTimestamp": "D",  # (0034,0007)
    "FrameReferenceDateTime": "D",  # (0018,9151)
    "FunctionalSyncPulse": "D",  # (0018,9623)
    "GantryID": "X",  # (0018,1008)
    "GeneratorID": "X",  # (0018,1005)
    "GPSAltitude": "X",  # (0016,0076)
    "GPSAltitudeRef": "X",  # (0016,0075)
    "GPSAreaInformation": "X",  # (0016,008C)
    "GPSDateStamp": "X",  # (0016,008D)
    "GPSDestBearing": "X",  # (0016,0088)
    "GPSDestBearingRef": "X",  # (0016,0087)
    "GPSDestDistance": "X",  # (0016,008A)
    "GPSDestDistanceRef": "X",  # (0016,0089)
    "GPSDestLatitude": "X",  # (0016,0084)
    "GPSDestLatitudeRef": "X",  # (0016,0083)
    "GPSDestLongitude": "X",  # (0016,0086)
    "GPSDestLongitudeRef": "X",  # (0016,0085)
    "GPSDifferential": "X",  # (0016,008E)
    "GPSDOP": "X",  # (0016,007B)
    "GPSImgDirection": "X",  # (0016,0081)
    "GPSImgDirectionRef": "X",  # (0016,0080)
    "GPSLatitude": "X",  # (0016,0072)
    "GPSLatitudeRef": "X",  # (0016,0071)
    "GPSLongitude": "X",  # (0016,0074)
    "GPSLongitudeRef": "X",  # (0016,0073)
    "GPSMapDatum": "X",  # (0016,0082)
    "GPSMeasureMode": "X",  # (0016,007A)
    "GPSProcessingMethod": "X",  # (0016,008B)
    "GPSSatellites": "X",  # (0016,0078)
    "GPSSpeed": "X",  # (0016,007D)
    "GPSSpeedRef": "X",  # (0016,007C)
    "GPSStatus": "X",  # (0016,0079)
    "GPSTimeStamp": "X",  # (0016,0077)
    "GPSTrack": "X",  # (0016,007F)
    "GPSTrackRef": "X",  # (0016,007E)
    "GPSVersionID": "X",  # (0016,0070)
    "GraphicAnnotationSequence": "D",  # (0070,0001)
    "HangingProtocolCreationDateTime": "D",  # (0072,000A)
    "HL7DocumentEffectiveTime": "X",  # (0040,E004)
    "HumanPerformerName": "X",  # (0040,4037)
    "HumanPerformerOrganization": "X",  # (0040,4036)
    "IconImageSequence": "X",  # (0088,0200)
    "IdentifyingComments": "X",  # (0008,4000)
    "ImageComments": "X",  # (0020,4000)
    "ImagePresentationComments": "X",  # (0028,4000)
    "ImagingServiceRequestComments": "X",  # (0040,2400)
    "ImpedanceMeasurementDateTime": "D",  # (003A,0314)
    "Impressions": "X",  # (4008,0300)
    "InformationIssueDateTime": "D",  # (0068,6270)
    "InstanceCoercionDateTime": "X",  # (0008,0015)
    "InstanceCreationDate": "X/D",  # (0008,0012)
    "InstanceCreationTime": "X/Z/D",  # (0008,0013)
    "InstanceCreatorUID": "U",  # (0008,0014)
    "InstanceOriginStatus": "X",  # (0400,0600)
    "InstitutionAddress": "X",  # (0008,0081)
    "InstitutionalDepartmentName": "X",  # (0008,1040)
    "InstitutionalDepartmentTypeCodeSequence": "X",  # (0008,1041)
    "InstitutionCodeSequence": "X/Z/D",  # (0008,0082)
    "InstitutionName": "X/Z/D",  # (0008,0080)
    "InstructionPerformedDateTime": "Z/D",  # (0018,9919)
    "InsurancePlanIdentification": "X",  # (0010,1050)
    "IntendedFractionStartTime": "X",  # (3010,0085)
    "IntendedPhaseEndDate": "X/D",  # (3010,004D)
    "IntendedPhaseStartDate": "X/D",  # (3010,004C)
    "IntendedRecipientsOfResultsIdentificationSequence": "X",  # (0040,1011)
    "InterlockDateTime": "D",  # (300A,0741)
    "InterlockDescription": "D",  # (300A,0742)
    "InterlockOriginDescription": "D",  # (300A,0783)
    "InterpretationApprovalDate": "X",  # (4008,0112)
    "InterpretationApprovalTime": "X",  # (4008,0113)
    "InterpretationApproverSequence": "X",  # (4008,0111)
    "InterpretationAuthor": "X",  # (4008,010C)
    "InterpretationDiagnosisDescription": "X",  # (4008,0115)
    "InterpretationID": "X",  # (4008,0200)
    "InterpretationIDIssuer": "X",  # (4008,0202)
    "InterpretationRecordedDate": "X",  # (4008,0100)
    "InterpretationRecordedTime": "X",  # (4008,0101)
    "InterpretationRecorder": "X",  # (4008,0102)
    "InterpretationText": "X",  # (4008,010B)
    "InterpretationTranscriber": "X",  # (4008,010A)
    "InterpretationTranscriptionDate": "X",  # (4008,0108)
    "InterpretationTranscriptionTime": "X",  # (4008,0109)
    "InterventionDrugStartTime": "X",  # (0018,0035)
    "InterventionDrugStopTime": "X",  # (0018,0027)
    "IrradiationEventUID": "U",  # (0008,3010)
    "IssueDateOfImagingServiceRequest": "X",  # (0040,2004)
    "IssuerOfAdmissionID": "X",  # (0038,0011)
    "IssuerOfAdmissionIDSequence": "X",  # (0038,0014)
    "IssuerOfClinicalTrialProtocolID": "X",  # (0012,0022)
    "IssuerOfClinicalTrialSeriesID": "X",  # (0012,0073)
    "IssuerOfClinicalTrialSiteID": "X",  # (0012,0032)
    "IssuerOfClinicalTrialSubjectID": "X",  # (0012,0041)
    "IssuerOfClinicalTrialSubjectReadingID": "X",  # (0012,0043)
    "IssuerOfClinicalTrialTimePointID": "X",  # (0012,0055)
    "IssuerOfPatientID": "X",  # (0010,0021)
    "IssuerOfServiceEpisodeID": "X",  # (0038,0061)
    "IssuerOfServiceEpisodeIDSequence": "X",  # (0038,0064)
    "IssuerOfTheContainerIdentifierSequence": "Z",  # (0040,0513)
    "IssuerOfTheSpecimenIdentifierSequence": "Z",  # (0040,0562)
    "IssueTimeOfImagingServiceRequest": "X",  # (0040,2005)
    "LabelText": "X/Z",  # (2200,0002)
    "LargePaletteColorLookupTableUID": "U",  # (0028,1214)
    "LastMenstrualDate": "X",  # (0010,21D0)
    "LensMake": "X",  # (0016,004F)
    "LensModel": "X",  # (0016,0050)
    "LensSerialNumber": "X",  # (0016,0051)
    "LensSpecification": "X",  # (0016,004E)
    "LongDeviceDescription": "X",  # (0050,0021)
    "MAC": "X",  # (0400,0404)
    "MakerNote": "X",  # (0016,002B)
    "ManufacturerDeviceClassUID": "U",  # (0018,100B)
    "ManufacturerDeviceIdentifier": "Z",  # (3010,0043)
    "MediaStorageSOPInstanceUID": "U",  # (0002,0003)
    "MedicalAlerts": "X",  # (0010,2000)
    "MedicalRecordLocator": "X",  # (0010,1090)
    "MilitaryRank": "X",  # (0010,1080)
    "ModifiedAttributesSequence": "X",  # (0400,0550)
    "ModifiedImageDate": "X",  # (0020,3403)
    "ModifiedImageDescription": "X",  # (0020,3406)
    "ModifiedImageTime": "X",  # (0020,3405)
    "ModifyingDeviceID": "X",  # (0020,3401)
    "ModifyingSystem": "D",  # (0400,0563)
    "MostRecentTreatmentDate": "X/D",  # (3008,0056)
    "MultienergyAcquisitionDescription": "X",  # (0018,937B)
    "MultiplexGroupUID": "U",  # (003A,0310)
    "NameOfPhysiciansReadingStudy": "X",  # (0008,1060)
    "NamesOfIntendedRecipientsOfResults": "X",  # (0040,1010)
    "NetworkID": "X",  # (0008,1000)
    "NonconformingDataElementValue": "X",  # (0400,0552)
    "NonconformingModifiedAttributesSequence": "X",  # (0400,0551)
    "ObservationDateTime": "X/D",  # (0040,A032)
    "ObservationDateTrial": "X",  # (0040,A192)
    "ObservationStartDateTime": "X",  # (0040,A033)
    "ObservationSubjectUIDTrial": "U",  # (0040,A402)
    "ObservationTimeTrial": "X",  # (0040,A193)
    "ObservationUID": "U",  # (0040,A171)
    "Occupation": "X",  # (0010,2180)
    "OperatorIdentificationSequence": "X/D",  # (0008,1072)
    "OperatorsName": "X/Z/D",  # (0008,1070)
    "OrderCallbackPhoneNumber": "X",  # (0040,2010)
    "OrderCallbackTelecomInformation": "X",  # (0040,2011)
    "OrderEnteredBy": "X",  # (0040,2008)
    "OrderEntererLocation": "X",  # (0040,2009)
    "OriginalAttributesSequence": "X",  # (0400,0561)
    "Originator": "X",  # (2100,0070)
    "OtherClinicalTrialProtocolIDsSequence": "X",  # (0012,0023)
    "OtherPatientIDs": "X",  # (0010,1000)
    "OtherPatientIDsSequence": "X",  # (0010,1002)
    "OtherPatientNames": "X",  # (0010,1001)
    "OverlayDate": "X",  # (0008,0024)
    "OverlayTime": "X",  # (0008,0034)
    "OverrideDateTime": "D",  # (300A,0760)
    "PaletteColorLookupTableUID": "U",  # (0028,1199)
    "ParticipantSequence": "X",  # (0040,A07A)
    "ParticipationDateTime": "Z",  # (0040,A082)
    "PatientAddress": "X",  # (0010,1040)
    "PatientAge": "X",  # (0010,1010)
    "PatientBirthDate": "Z",  # (0010,0030)
    "PatientBirthName": "X",  # (0010,1005)
    "PatientBirthTime": "X",  # (0010,0032)
    "PatientComments": "X",  # (0010,4000)
    "PatientID": "Z/D",  # (0010,0020)
    "PatientInstitutionResidence": "X",  # (0038,0400)
    "PatientInsurancePlanCodeSequence": "X",  # (0010,0050)
    "PatientMotherBirthName": "X",  # (0010,1060)
    "PatientName": "Z",  # (0010,0010)
    "PatientPrimaryLanguageCodeSequence": "X",  # (0010,0101)
    "PatientPrimaryLanguageModifierCodeSequence": "X",  # (0010,0102)
    "PatientReligiousPreference": "X",  # (0010,21F0)
    "PatientSetupPhotoDescription": "X",  # (300A,0794)
    "PatientSetupUID": "U",  # (300A,0650)
    "PatientSex": "Z",  # (0010,0040)
    "PatientSexNeutered": "X/Z",  # (0010,2203)
    "PatientSize": "X",  # (0010,1020)
    "PatientState": "X",  # (0038,0500)
    "PatientTelecomInformation": "X",  # (0010,2155)
    "PatientTelephoneNumbers": "X",  # (0010,2154)
    "PatientTransportArrangements": "X",  # (0040,1004)
    "PatientTreatmentPreparationMethodDescription": "X",  # (300A,0792)
    "PatientTreatmentPreparationProcedureParameterDescription": "X",  # (300A,078E)
    "PatientWeight": "X",  # (0010,1030)
    "PerformedLocation": "X",  # (0040,0243)
    "PerformedProcedureStepDescription": "X",  # (0040,0254)
    "PerformedProcedureStepEndDate": "X",  # (0040,0250)
    "PerformedProcedureStepEndDateTime": "X",  # (0040,4051)
    "PerformedProcedureStepEndTime": "X",  # (0040,0251)
    "PerformedProcedureStepID": "X",  # (0040,0253)
    "PerformedProcedureStepStartDate": "X",  # (0040,0244)
    "PerformedProcedureStepStartDateTime": "X",  # (0040,4050)
    "PerformedProcedureStepStartTime": "X",  # (0040,0245)
    "PerformedStationAETitle": "X",  # (0040,0241)
    "PerformedStationGeographicLocationCodeSequence": "X",  # (0040,4030)
    "PerformedStationName": "X",  # (0040,0242)
    "PerformedStationNameCodeSequence": "X",  # (0040,4028)
    "PerformingPhysicianIdentificationSequence": "X",  # (0008,1052)
    "PerformingPhysicianName": "X",  # (0008,1050)
    "PersonAddress": "X",  # (0040,1102)
    "PersonIdentificationCodeSequence": "D",  # (0040,1101)
    "PersonName": "D",  # (0040,A123)
    "PersonTelecomInformation": "X",  # (0040,1104)
    "PersonTelephoneNumbers": "X",  # (0040,1103)
    "PhysicianApprovingInterpretation": "X",  # (4008,0114)
    "PhysiciansOfRecord": "X",  # (0008,1048)
    "PhysiciansOfRecordIdentificationSequence": "X",  # (0008,1049)
    "PhysiciansReadingStudyIdentificationSequence": "X",  # (0008,1062)
    "PlacerOrderNumberImagingServiceRequest": "Z",  # (0040,2016)
    "PlateID": "X",  # (0018,1004)
    "PositionAcquisitionTemplateDescription": "X",  # (3002,0123)
    "PositionAcquisitionTemplateName": "X",  # (3002,0121)
    "PregnancyStatus": "X",  # (0010,21C0)
    "PreMedication": "X",  # (0040,0012)
    "PrescriptionDescription": "X",  # (300A,000E)
    "PrescriptionNotes": "Z",  # (3010,007B)
    "PrescriptionNotesSequence": "Z",  # (3010,0081)
    "PresentationCreationDate": "X",  # (0070,0082)
    "PresentationCreationTime": "X",  # (0070,0083)
    "PresentationDisplayCollectionUID": "U",  # (0070,1101)
    "PresentationSequenceCollectionUID": "U",  # (0070,1102)
    "PriorTreatmentDoseDescription": "X",  # (3010,0061)
    "ProcedureStepCancellationDateTime": "X",  # (0040,4052)
    "ProductExpirationDateTime": "X",  # (0044,000B)
    "ProtocolName": "X/D",  # (0018,1030)
    "PyramidDescription": "X",  # (0008,1088)
    "PyramidLabel": "X",  # (0020,0027)
    "PyramidUID": "U",  # (0008,0019)
    "RadiationDoseIdentificationLabel": "D",  # (300A,0619)
    "RadiationDoseInVivoMeasurementLabel": "D",  # (300A,0623)
    "RadiationGenerationModeDescription": "Z",  # (300A,067D)
    "RadiationGenerationModeLabel": "D",  # (300A,067C)
    "RadiopharmaceuticalStartDateTime": "X",  # (0018,1078)
    "RadiopharmaceuticalStartTime": "X",  # (0018,1072)
    "RadiopharmaceuticalStopDateTime": "X",  # (0018,1079)
    "RadiopharmaceuticalStopTime": "X",  # (0018,1073)
    "ReasonForOmissionDescription": "X",  # (300C,0113)
    "ReasonForRequestedProcedureCodeSequence": "X",  # (0040,100A)
    "ReasonForStudy": "X",  # (0032,1030)
    "ReasonForSuperseding": "Z",  # (3010,005C)
    "ReasonForTheAttributeModification": "D",  # (0400,0565)
    "ReasonForTheImagingServiceRequest": "X",  # (0040,2001)
    "ReasonForTheRequestedProcedure": "X",  # (0040,1002)
    "ReasonForVisit": "X",  # (0032,1066)
    "ReasonForVisitCodeSequence": "X",  # (0032,1067)
    "ReceivingAE": "X",  # (0074,1234)
    "RecordedRTControlPointDateTime": "D",  # (300A,073A)
    "ReferencedConceptualVolumeUID": "U",  # (3010,000B)
    "ReferencedDateTime": "D",  # (0040,A13A)
    "ReferencedDigitalSignatureSequence": "X",  # (0400,0402)
    "ReferencedDoseReferenceUID": "U",  # (300A,0083)
    "ReferencedDosimetricObjectiveUID": "U",  # (3010,006F)
    "ReferencedFiducialsUID": "U",  # (3010,0031)
    "ReferencedFrameOfReferenceUID": "U",  # (3006,0024)
    "ReferencedGeneralPurposeScheduledProcedureStepTransactionUID": "U",  # (0040,4023)
    "ReferencedImageSequence": "X/Z/U*",  # (0008,1140)
    "ReferencedObservationUIDTrial": "U",  # (0040,A172)
    "ReferencedPatientAliasSequence": "X",  # (0038,0004)
    "ReferencedPatientPhotoSequence": "X",  # (0010,1100)
    "ReferencedPatientSequence": "X",  # (0008,1120)
    "ReferencedPerformedProcedureStepSequence": "X/Z/D",  # (0008,1111)
    "ReferencedSOPInstanceMACSequence": "X",  # (0400,0403)
    "ReferencedSOPInstanceUID": "U",  # (0008,1155)
    "ReferencedSOPInstanceUIDInFile": "U",  # (0004,1511)
    "ReferencedStudySequence": "X/Z",  # (0008,1110)
    "ReferencedTreatmentPositionGroupUID": "U",  # (300A,0785)
    "ReferringPhysicianAddress": "X",  # (0008,0092)
    "ReferringPhysicianIdentificationSequence": "X",  # (0008,0096)
    "ReferringPhysicianName": "Z",  # (0008,0090)
    "ReferringPhysicianTelephoneNumbers": "X",  # (0008,0094)
    "RegionOfResidence": "X",  # (0010,2152)
    "RelatedFrameOfReferenceUID": "U",  # (3006,00C2)
    "RequestAttributesSequence": "X",  # (0040,0275)
    "RequestedContrastAgent": "X",  # (0032,1070)
    "RequestedProcedureComments": "X",  # (0040,1400)
    "RequestedProcedureDescription": "X/Z",  # (0032,1060)
    "RequestedProcedureID": "X",  # (0040,1001)
    "RequestedProcedureLocation": "X",  # (0040,1005)
    "RequestedSeriesDescription": "X",  # (0018,9937)
    "RequestedSOPInstanceUID": "U",  # (0000,1001)
    "RequestingAE": "X",  # (0074,1236)
    "RequestingPhysician": "X",  # (0032,1032)
    "RequestingService": "X",  # (0032,1033)
    "RespiratoryMotionCompensationTechniqueDescription": "X",  # (0018,9185)
    "ResponsibleOrganization": "X",  # (0010,2299)
    "ResponsiblePerson": "X",  # (0010,2297)
    "ResultsComments": "X",  # (4008,4000)
    "ResultsDistributionListSequence": "X",  # (4008,0118)
    "ResultsID": "X",  # (4008,0040)
    "ResultsIDIssuer": "X",  # (4008,0042)
    "RetrieveAETitle": "X",  # (0008,0054)
    "ReviewDate": "Z",  # (300E,0004)
    "ReviewerName": "X/Z",  # (300E,0008)
    "ReviewTime": "Z",  # (300E,0005)
    "ROICreatorSequence": "X",  # (3006,004D)
    "ROIDateTime": "X",  # (3006,002D)
    "ROIDescription": "X",  # (3006,0028)
    "ROIGenerationDescription": "X",  # (3006,0038)
    "ROIInterpreter": "Z",  # (3006,00A6)
    "ROIInterpreterSequence": "X",  # (3006,004E)
    "ROIName": "Z",  # (3006,0026)
    "ROIObservationDateTime": "X",  # (3006,002E)
    "ROIObservationDescription": "X",  # (3006,0088)
    "ROIObservationLabel": "X",  # (3006,0085)
    "RTAccessoryDeviceSlotID": "Z",  # (300A,0615)
    "RTAccessoryHolderSlotID": "Z",  # (300A,0611)
    "RTPhysicianIntentNarrative": "Z",  # (3010,005A)
    "RTPlanDate": "X/D",  # (300A,0006)
    "RTPlanDescription": "X",  # (300A,0004)
    "RTPlanLabel": "D",  # (300A,0002)
    "RTPlanName": "X",  # (300A,0003)
    "RTPlanTime": "X/D",  # (300A,0007)
    "RTPrescriptionLabel": "D",  # (3010,0054)
    "RTToleranceSetLabel": "D",  # (300A,062A)
    "RTTreatmentApproachLabel": "X/D",  # (3010,0056)
    "RTTreatmentPhaseUID": "U",  # (3010,003B)
    "SafePositionExitDate": "D",  # (3008,0162)
    "SafePositionExitTime": "D",  # (3008,0164)
    "SafePositionReturnDate": "D",  # (3008,0166)
    "SafePositionReturnTime": "D",  # (3008,0168)
    "ScheduledAdmissionDate": "X",  # (0038,001A)
    "ScheduledAdmissionTime": "X",  # (0038,001B)
    "ScheduledDischargeDate": "X",  # (0038,001C)
    "ScheduledDischargeTime": "X",  # (0038,001D)
    "ScheduledHumanPerformersSequence": "X",  # (0040,4034)
    "ScheduledPatientInstitutionResidence": "X",  # (0038,001E)
    "ScheduledPerformingPhysicianIdentificationSequence": "X",  # (0040,000B)
    "ScheduledPerformingPhysicianName": "X",  # (0040,0006)
    "ScheduledProcedureStepDescription": "X",  # (0040,0007)
    "ScheduledProcedureStepEndDate": "X",  # (0040,0004)
    "ScheduledProcedureStepEndTime": "X",  # (0040,0005)
    "ScheduledProcedureStepExpirationDateTime": "X",  # (0040,4008)
    "ScheduledProcedureStepID": "X",  # (0040,0009)
    "ScheduledProcedureStepLocation": "X",  # (0040,0011)
    "ScheduledProcedureStepModificationDateTime": "X",  # (0040,4010)
    "ScheduledProcedureStepStartDate": "X",  # (0040,0002)
    "ScheduledProcedureStepStartDateTime": "X",  # (0040,4005)
    "ScheduledProcedureStepStartTime": "X",  # (0040,0003)
    "ScheduledStationAETitle": "X",  # (0040,0001)
    "ScheduledStationGeographicLocationCodeSequence": "X",  # (0040,4027)
    "ScheduledStationName": "X",  # (0040,0010)
    "ScheduledStationNameCodeSequence": "X",  # (0040,4025)
    "ScheduledStudyLocation": "X",  # (0032,1020)
    "ScheduledStudyLocationAETitle": "X",  # (0032,1021)
    "ScheduledStudyStartDate": "X",  # (0032,1000)
    "ScheduledStudyStartTime": "X",  # (0032,1001)
    "ScheduledStudyStopDate": "X",  # (0032,1010)
    "ScheduledStudyStopTime": "X",  # (0032,1011)
    "SelectorAEValue": "D",  # (0072,005E)
    "SelectorASValue": "D",  # (0072,005F)
    "SelectorDAValue": "D",  # (0072,0061)
    "SelectorDTValue": "D",  # (0072,0063)
    "SelectorLOValue": "D",  # (0072,0066)
    "SelectorLTValue": "D",  # (0072,0068)
    "SelectorOBValue": "D",  # (0072,0065)
    "SelectorPNValue": "D",  # (0072,006A)
    "SelectorSHValue": "D",  # (0072,006C)
    "SelectorSTValue": "D",  # (0072,006E)
    "SelectorTMValue": "D",  # (0072,006B)
    "SelectorUNValue": "D",  # (0072,006D)
    "SelectorURValue": "D",  # (0072,0071)
    "SelectorUTValue": "D",  # (0072,0070)
    "SeriesDate": "X/D",  # (0008,0021)
    "SeriesDescription": "X",  # (0008,103E)
    "SeriesInstanceUID": "U",  # (0020,000E)
    "SeriesTime": "X/D",  # (0008,0031)
    "ServiceEpisodeDescription": "X",  # (0038,0062)
    "ServiceEpisodeID": "X",  # (0038,0060)
    "SetupTechniqueDescription": "X",  # (300A,01B2)
    "ShieldingDeviceDescription": "X",  # (300A,01A6)
    "SlideIdentifier": "X",  # (0040,06FA)
    "SmokingStatus": "X",  # (0010,21A0)
    "SOPAuthorizationDateTime": "X",  # (0100,0420)
    "SOPInstanceUID": "U",  # (0008,0018)
    "SourceConceptualVolumeUID": "U",  # (3010,0015)
    "SourceEndDateTime": "D",  # (0018,936A)
    "SourceFrameOfReferenceUID": "U",  # (0064,0003)
    "SourceIdentifier": "D",  # (0034,0005)
    "SourceImageSequence": "X/Z/U*",  # (0008,2112)
    "SourceManufacturer": "X",  # (300A,0216)
    "SourceOfPreviousValues": "Z",  # (0400,0564)
    "SourceSerialNumber": "X/Z",  # (3008,0105)
    "SourceStartDateTime": "D",  # (0018,9369)
    "SourceStrengthReferenceDate": "D",  # (300A,022C)
    "SourceStrengthReferenceTime": "D",  # (300A,022E)
    "SpecialNeeds": "X",  # (0038,0050)
    "SpecimenAccessionNumber": "X",  # (0040,050A)
    "SpecimenDetailedDescription": "X",  # (0040,0602)
    "SpecimenIdentifier": "D",  # (0040,0551)
    "SpecimenPreparationSequence": "Z",  # (0040,0610)
    "SpecimenShortDescription": "X",  # (0040,0600)
    "SpecimenUID": "U",  # (0040,0554)
    "StartAcquisitionDateTime": "X/D",  # (0018,9516)
    "StationAETitle": "X",  # (0008,0055)
    "StationName": "X/Z/D",  # (0008,1010)
    "StorageMediaFileSetUID": "U",  # (0088,0140)
    "StructureSetDate": "Z",  # (3006,0008)
    "StructureSetDescription": "X",  # (3006,0006)
    "StructureSetLabel": "D",  # (3006,0002)
    "StructureSetName": "X",  # (3006,0004)
    "StructureSetTime": "Z",  # (3006,0009)
    "StudyArrivalDate": "X",  # (0032,1040)
    "StudyArrivalTime": "X",  # (0032,1041)
    "StudyComments": "X",  # (0032,4000)
    "StudyCompletionDate": "X",  # (0032,1050)
    "StudyCompletionTime": "X",  # (0032,1051)
    "StudyDate": "Z",  # (0008,0020)
    "StudyDescription": "X",  # (0008,1030)
    "StudyID": "Z",  # (0020,0010)
    "StudyIDIssuer": "X",  # (0032,0012)
    "StudyInstanceUID": "U",  # (0020,000D)
    "StudyReadDate": "X",  # (0032,0034)
    "StudyReadTime": "X",  # (0032,0035)
    "StudyTime": "Z",  # (0008,0030)
    "StudyVerifiedDate": "X",  # (0032,0032)
    "StudyVerifiedTime": "X",  # (0032,0033)
    "SubstanceAdministrationDateTime": "X",  # (0044,0010)
    "SynchronizationFrameOfReferenceUID": "U",  # (0020,0200)
    "TargetUID": "U",  # (0018,2042)
    "TelephoneNumberTrial": "X",  # (0040,A354)
    "TemplateExtensionCreatorUID": "U",  # (0040,DB0D)
    "TemplateExtensionOrganizationUID": "U",  # (0040,DB0C)
    "TemplateLocalVersion": "X",  # (0040,DB07)
    "TemplateVersion": "X",  # (0040,DB06)
    "TextComments": "X",  # (4000,4000)
    "TextString": "X",  # (2030,0020)
    "Time": "D",  # (0040,A122)
    "TimeOfDocumentCreationOrVerbalTransactionTrial": "X",  # (0040,A112)
    "TimeOfLastCalibration": "X",  # (0018,1201)
    "TimeOfLastDetectorCalibration": "X/D",  # (0018,700E)
    "TimeOfSecondaryCapture": "X",  # (0018,1014)
    "TimezoneOffsetFromUTC": "X",  # (0008,0201)
    "TopicAuthor": "X",  # (0088,0910)
    "TopicKeywords": "X",  # (0088,0912)
    "TopicSubject": "X",  # (0088,0906)
    "TopicTitle": "X",  # (0088,0904)
    "TrackingUID": "U",  # (0062,0021)
    "TransactionUID": "U",  # (0008,1195)
    "TransducerIdentificationSequence": "X",  # (0018,5011)
    "TreatmentControlPointDate": "D",  # (3008,0024)
    "TreatmentControlPointTime": "D",  # (3008,0025)
    "TreatmentDate": "X/D",  # (3008,0250)
    "TreatmentMachineName": "X/Z",  # (300A,00B2)
    "TreatmentPositionGroupLabel": "D",  # (300A,0608)
    "TreatmentPositionGroupUID": "U",  # (300A,0609)
    "TreatmentSessionUID": "U",  # (300A,0700)
    "TreatmentSite": "X/D",  # (3010,0077)
    "TreatmentSites": "X",  # (300A,000B)
    "TreatmentTechniqueNotes": "Z",  # (3010,007A)
    "TreatmentTime": "X/D",  # (3008,0251)
    "TreatmentToleranceViolationDateTime": "D",  # (300A,0736)
    "TreatmentToleranceViolationDescription": "D",  # (300A,0734)
    "UDISequence": "X",  # (0018,100A)
    "UID": "U",  # (0040,A124)
    "UniqueDeviceIdentifier": "X",  # (0018,1009)
    "UserContentLabel": "D",  # (3010,0033)
    "UserContentLongLabel": "D",  # (3010,0034)
    "VerbalSourceIdentifierCodeSequenceTrial": "X",  # (0040,A358)
    "VerbalSourceTrial": "X",  # (0040,A352)
    "VerificationDateTime": "D",  # (0040,A030)
    "VerifyingObserverIdentificationCodeSequence": "Z",  # (0040,A088)
    "VerifyingObserverName": "D",  # (0040,A075)
    "VerifyingObserverSequence": "D",  # (0040,A073)
    "VerifyingOrganization": "D",  # (0040,A027)
    "VisitComments": "X",  # (0038,4000)
    "WaveformFilterDescription": "X",  # (003A,0329)
    "XRayDetectorID": "D",  # (0018,9371)
    "XRayDetectorLabel": "X",  # (0018,9373)
    "XRaySourceID": "D",  # (0018,9367)
}


#: Table E.1-1 (Basic Profile column) by tag, with the standard's action codes verbatim.
BASIC_PROFILE: dict[BaseTag, str] = {Tag(keyword): code for keyword, code in TABLE_E1_1.items()}

#: The one simple action each compound code of the table gets here (see the module docstring).
COMPOUND_RESOLUTION: dict[str, str] = {
    "Z/D": "Z",
    "X/Z": "X",
    "X/D": "X",
    "X/Z/D": "X",
    "X/Z/U*": "U",
}

#: Attributes that ``keep_descriptions=True`` cleans (C) instead of removing: they name the
#: sequence ("t1_mprage_sag"), which is what a reader of the de-identified series needs most.
DESCRIPTOR_KEYWORDS: tuple[str, ...] = ("StudyDescription", "SeriesDescription", "ProtocolName")
DESCRIPTOR_TAGS = frozenset(Tag(keyword) for keyword in DESCRIPTOR_KEYWORDS)

#: DICOM CID 7050 "De-identification Method": code value -> code meaning (scheme DCM).
CID_7050: dict[str, str] = {
    "113100": "Basic Application Confidentiality Profile",
    "113101": "Clean Pixel Data Option",
    "113102": "Clean Recognizable Visual Features Option",
    "113103": "Clean Graphics Option",
    "113104": "Clean Structured Content Option",
    "113105": "Clean Descriptors Option",
    "113106": "Retain Longitudinal Temporal Information Full Dates Option",
    "113107": "Retain Longitudinal Temporal Information Modified Dates Option",
    "113108": "Retain Patient Characteristics Option",
    "113109": "Retain Device Identity Option",
    "113110": "Retain UIDs Option",
    "113111": "Retain Safe Private Option",
    "113112": "Retain Institution Identity Option",
}
# We always apply the Basic Profile to what these options would retain: claiming one would lie.
RETAIN_OPTION_CODES = frozenset(code for code, meaning in CID_7050.items() if "Retain" in meaning)
BASIC_PROFILE_CODE = ("113100", "DCM", CID_7050["113100"])

#: Dummy values for D, by VR: fixed, so that they carry no information. Other VRs are emptied.
DUMMY_BY_VR: dict[str, str | int] = {
    **dict.fromkeys(("AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"), "ANONYMIZED"),
    "AS": "000Y",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    **dict.fromkeys(("DS", "IS"), "0"),
    **dict.fromkeys(("FL", "FD", "SL", "SS", "SV", "UL", "US", "UV"), 0),
}


#: Attributes the profile does not name that a de-identified data set keeps (see the module
#: docstring); every other unnamed attribute is removed. By module of the MR Image and Enhanced
#: MR Image IODs (PS3.3 C.7, C.8.13, C.7.6.16 functional group macros); pydicom keywords.
_KEEP_BY_MODULE = (
    # SOP Common, General Series/Study structure (UIDs are remapped by the table's U)
    """
        SpecificCharacterSet SOPClassUID InstanceNumber Modality SeriesNumber Laterality
        PatientPosition BodyPartExamined AnatomicalOrientationType AcquisitionNumber
        ImageLaterality QualityControlImage BurnedInAnnotation RecognizableVisualFeatures
        PresentationIntentType
    """,
    # General Equipment (make and model; serial numbers and stations are in the table)
    """
        Manufacturer ManufacturerModelName SoftwareVersions
    """,
    # Image Plane, Image Pixel, Multi-frame, VOI and Modality LUT
    """
        PixelSpacing ImageOrientationPatient ImagePositionPatient SliceThickness
        SpacingBetweenSlices SliceLocation SamplesPerPixel PhotometricInterpretation Rows
        Columns BitsAllocated BitsStored HighBit PixelRepresentation PlanarConfiguration
        PixelAspectRatio SmallestImagePixelValue LargestImagePixelValue PixelPaddingValue
        PixelPaddingRangeLimit PixelData FloatPixelData DoubleFloatPixelData
        ExtendedOffsetTable ExtendedOffsetTableLengths NumberOfFrames FrameIncrementPointer
        LossyImageCompression LossyImageCompressionRatio LossyImageCompressionMethod
        RescaleIntercept RescaleSlope RescaleType WindowCenter WindowWidth VOILUTFunction
        PresentationLUTShape PixelPresentation VolumetricProperties
        VolumeBasedCalculationTechnique ComplexImageComponent AcquisitionContrast ImageType
        FrameType ContentQualification
    """,
    # MR Image
    """
        ScanningSequence SequenceVariant ScanOptions MRAcquisitionType
        AngioFlag RepetitionTime EchoTime InversionTime EchoTrainLength TriggerTime
        NumberOfAverages ImagingFrequency ImagedNucleus EchoNumbers MagneticFieldStrength
        NumberOfPhaseEncodingSteps PercentSampling PercentPhaseFieldOfView PixelBandwidth
          AcquisitionMatrix InPlanePhaseEncodingDirection
        FlipAngle VariableFlipAngleFlag SAR dBdt ReconstructionDiameter
        TemporalPositionIdentifier NumberOfTemporalPositions HeartRate LowRRValue
        HighRRValue IntervalsAcquired IntervalsRejected DiffusionBValue
        DiffusionGradientOrientation
    """,
    # Enhanced MR Image and its functional groups
    """
        SharedFunctionalGroupsSequence PerFrameFunctionalGroupsSequence
        PixelMeasuresSequence PlanePositionSequence PlaneOrientationSequence
        FrameContentSequence FrameAcquisitionNumber FrameAcquisitionDuration StackID
        InStackPositionNumber TemporalPositionIndex DimensionIndexValues
        DimensionOrganizationSequence DimensionIndexSequence DimensionIndexPointer
        FunctionalGroupPointer DimensionOrganizationType PixelValueTransformationSequence
        FrameVOILUTSequence MRImageFrameTypeSequence FrameAnatomySequence FrameLaterality
        AnatomicRegionSequence MRTimingAndRelatedParametersSequence MREchoSequence
        MRModifierSequence MRImagingModifierSequence MRReceiveCoilSequence
        MRTransmitCoilSequence MRFOVGeometrySequence MRAveragesSequence
        MRSpatialSaturationSequence MRDiffusionSequence MRMetaboliteMapSequence
        MRVelocityEncodingSequence MRArterialSpinLabelingSequence ReceiveCoilType
        QuadratureReceiveCoil TransmitCoilType MultiCoilElementUsed
        EchoPulseSequence MultipleSpinEcho MultiPlanarExcitation PhaseContrast
        TimeOfFlightContrast Spoiling SteadyStatePulseSequence EchoPlanarPulseSequence
        SaturationRecovery SpectrallySelectedSuppression SpectrallySelectedExcitation
        SpatialPresaturation Tagging OversamplingPhase GeometryOfKSpaceTraversal
        SegmentedKSpaceTraversal RectilinearPhaseEncodeReordering CoverageOfKSpace
        NumberOfKSpaceTrajectories ResonantNucleus KSpaceFiltering
        ApplicableSafetyStandardAgency SpecificAbsorptionRateSequence
        SpecificAbsorptionRateDefinition SpecificAbsorptionRateValue GradientOutputType
        GradientOutput OperatingModeSequence OperatingModeType OperatingMode B1rms
        RFEchoTrainLength GradientEchoTrainLength EffectiveEchoTime InversionRecovery
        InversionTimes FlowCompensation T2Preparation BloodSignalNulling
        MagnetizationTransfer PartialFourier PartialFourierDirection ParallelAcquisition
        ParallelAcquisitionTechnique ParallelReductionFactorInPlane
        ParallelReductionFactorOutOfPlane ParallelReductionFactorSecondInPlane
        MRAcquisitionFrequencyEncodingSteps MRAcquisitionPhaseEncodingStepsInPlane
        MRAcquisitionPhaseEncodingStepsOutOfPlane TransmitterFrequency AcquisitionDuration
        DiffusionDirectionality DiffusionBMatrixSequence DiffusionGradientDirectionSequence
        RealWorldValueMappingSequence RealWorldValueFirstValueMapped
        RealWorldValueLastValueMapped RealWorldValueIntercept RealWorldValueSlope
        MeasurementUnitsCodeSequence LUTLabel
    """,
    # Code items (of the coded sequences above): standard codes, not free text
    """
        CodeValue CodingSchemeDesignator CodingSchemeVersion CodeMeaning LongCodeValue
        URNCodeValue ContextIdentifier MappingResource
    """,
    # References between instances (their UIDs are remapped by the table's U)
    """
        DerivationImageSequence DerivationCodeSequence ReferencedSOPClassUID
        ReferencedFrameNumber PurposeOfReferenceCodeSequence SpatialLocationsPreserved
    """,
)
#: Vendor sequence codes: kept rebuilt from the controlled vocabulary ("*tfl3d1_16ns" -> "TFL 3D",
#: see cohortflow.privacy.descriptors.rebuild_sequence_name), never verbatim: sites edit them.
REBUILT_SEQUENCE_NAMES: frozenset[str] = frozenset({"SequenceName", "PulseSequenceName"})
ACQUISITION_KEEP_LIST: frozenset[str] = frozenset(
    keyword for module in _KEEP_BY_MODULE for keyword in module.split()
)
ACQUISITION_KEEP_TAGS: frozenset[BaseTag] = frozenset(Tag(k) for k in ACQUISITION_KEEP_LIST)
